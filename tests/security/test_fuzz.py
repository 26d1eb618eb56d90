"""Property-based fuzzing of every decoder that sees client or stored bytes, and of both
middlewares fed random ``Cookie`` headers (bytes, non-ASCII included).

No exception escapes, no 500, an invalid cookie is an empty session that changes nothing
in the store, and only the exact bytes the server issued are accepted. The number of
generated inputs is printed at the end of the run (see ``fuzzing.py``).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from sessionware import Session, SessionMiddleware, WSGISessionMiddleware
from sessionware._cookies import DUPLICATED, Duplicated, find_cookie
from sessionware._formats import Payload, _PayloadFormat
from sessionware._keys import KeySigner, new_key
from sessionware._records import Record, pack_fields, unpack_fields
from sessionware._serializers import FieldCodec, JSONSerializer
from sessionware.stores import CookieStore, MemoryStore
from tests.counting import CountingStore
from tests.security.fuzzing import (
    DECODER_EXAMPLES,
    END_TO_END_EXAMPLES,
    PARSER_EXAMPLES,
    TALLY,
    fuzz_settings,
    run_counted,
)
from tests.security.support import B64_ALPHABET

NAME = "sessionid"
SECRETS = [b"fuzz-secret-new-0123456789abcdef", b"fuzz-secret-old-0123456789abcdef"]

# -- strategies ---------------------------------------------------------------------------------

latin1 = st.characters(max_codepoint=255)
latin1_text = st.text(latin1, max_size=120)
# Characters that make tampering interesting: the base64 alphabet, separators, padding,
# characters a lenient base64 decoder skips, whitespace, quotes, non-ASCII.
tamper_char = st.one_of(st.sampled_from(B64_ALPHABET + ".=!~ \t\"';,\u00e9\u00ff\x00"), latin1)


@st.composite
def mutated(draw: st.DrawFn, bases: list[str]) -> str:
    """A value the server issued, changed by one or two edits."""
    value = draw(st.sampled_from(bases))
    for _ in range(draw(st.integers(1, 2))):
        where = draw(st.integers(0, len(value)))
        chunk = draw(st.text(tamper_char, min_size=1, max_size=4))
        edit = draw(st.sampled_from(["insert", "delete", "replace", "append", "prepend", "cut"]))
        if edit == "insert":
            value = value[:where] + chunk + value[where:]
        elif edit == "delete":
            value = value[:where] + value[where + len(chunk) :]
        elif edit == "replace":
            value = value[:where] + chunk + value[where + len(chunk) :]
        elif edit == "append":
            value += chunk
        elif edit == "prepend":
            value = chunk + value
        else:
            value = value[:where]
    return value


def json_trees(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | floats | st.text(max_size=8)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=5,
    )


json_values = json_trees(st.floats())  # NaN and infinities included: JSON allows them
# A timestamp field: numbers of every kind (huge integers, NaN, infinities) or junk.
meta_fields = st.one_of(st.integers(), st.floats(), st.text(max_size=6), st.none(), json_values)
meta_objects = st.one_of(
    st.fixed_dictionaries(
        {"c": meta_fields, "e": meta_fields},
        optional={"x": st.tuples(st.sampled_from(["age", "at", "?"]), meta_fields).map(list)},
    ),
    st.dictionaries(st.sampled_from(["c", "e", "x", "z"]), meta_fields, max_size=4),
    json_values,
)


def dumped(value: object) -> bytes:
    return json.dumps(value).encode()


meta_bytes = st.one_of(st.binary(max_size=200), meta_objects.map(dumped))

# -- small helpers ------------------------------------------------------------------------------


def counted() -> None:
    TALLY.inputs += 1


# -- the Cookie header parser -------------------------------------------------------------------


def test_fuzz_find_cookie_on_random_headers() -> None:
    @fuzz_settings(PARSER_EXAMPLES // 2)
    @given(st.lists(st.text(latin1, max_size=200), max_size=3))
    def run(headers: list[str]) -> None:
        counted()
        found = find_cookie(headers, NAME)
        assert found is None or found is DUPLICATED or isinstance(found, str)
        if isinstance(found, str):
            assert ";" not in found
        if not any(NAME in header for header in headers):
            assert found is None

    run_counted(run)


# RFC 6265 cookie-octet: what a server may put in a cookie value.
cookie_octets = st.text(
    st.characters(codec="ascii", exclude_characters=' ",;\\\x7f', min_codepoint=0x21), max_size=60
)
other_names = st.text(st.characters(codec="latin-1", exclude_characters=";="), max_size=12).filter(
    lambda n: n.strip() != NAME
)
other_pairs = st.tuples(
    other_names, st.text(st.characters(codec="latin-1", exclude_characters=";"))
)


def test_fuzz_find_cookie_finds_ours_among_any_others() -> None:
    @fuzz_settings(PARSER_EXAMPLES // 2)
    @given(
        st.lists(other_pairs, max_size=5),
        cookie_octets.filter(lambda v: not v.startswith('"')),
        st.integers(0, 5),
        st.sampled_from(["; ", ";", " ; "]),
        st.booleans(),
    )
    def run(others: list[tuple[str, str]], value: str, where: int, sep: str, twice: bool) -> None:
        counted()
        pairs = [f"{n}={v}" for n, v in others]
        pairs.insert(min(where, len(pairs)), f"{NAME}={value}")
        if twice:
            pairs.append(f" {NAME}={value}")
        found = find_cookie([sep.join(pairs)], NAME)
        assert found == (DUPLICATED if twice else value)

    run_counted(run)


# -- the signed-key decoder ---------------------------------------------------------------------

KEYS = [new_key() for _ in range(3)]
SIGNERS = [KeySigner([secret]) for secret in SECRETS]
ROTATING = KeySigner(SECRETS)
SIGNED = [signer.sign(key) for signer in SIGNERS for key in KEYS]


def test_fuzz_key_signer_accepts_only_exact_signatures() -> None:
    @fuzz_settings(PARSER_EXAMPLES)
    @given(st.one_of(mutated(SIGNED), st.sampled_from(SIGNED), latin1_text))
    @example(SIGNED[0] + "!!")
    def run(value: str) -> None:
        counted()
        result = ROTATING.unsign(value)
        if value in SIGNED:
            assert result == (value.rpartition(".")[0], value not in SIGNED[: len(KEYS)])
        if result is not None:
            key, old = result
            exact = [signer.sign(key) for signer in SIGNERS]
            assert value in exact, "accepted a value that is not an exact signature"
            assert old == (value != exact[0])

    run_counted(run)


# -- the cookie-store decoders ------------------------------------------------------------------


def _codec_fuzz(encrypt: bool) -> None:
    now = time.time()
    store = CookieStore(encrypt=encrypt)
    codecs = [store.cookie_format([secret], FIELDS) for secret in SECRETS]
    rotating = store.cookie_format(SECRETS, FIELDS)
    records = [
        Payload({"user": "ada"}, now, now + 600),
        Payload({"n": [1, 2, {"x": None}], "t": "\u00e9\u2603"}, now - 5, now + 60),
    ]
    issued = [c.encode(key, r) for c in codecs for key in KEYS[:2] for r in records]

    @fuzz_settings(DECODER_EXAMPLES)
    @given(st.one_of(mutated(issued), st.sampled_from(issued), latin1_text))
    @example(issued[0] + "!!")
    def run(value: str) -> None:
        counted()
        decoded = rotating.decode(value)
        if value in issued:
            assert decoded is not None
            assert decoded.old_secret == (issued.index(value) >= len(issued) // 2)
        else:
            assert decoded is None, "accepted a cookie the server never issued"

    run_counted(run)


def test_fuzz_signed_cookie_decoder() -> None:
    _codec_fuzz(encrypt=False)


def test_fuzz_encrypted_cookie_decoder() -> None:
    _codec_fuzz(encrypt=True)


# -- the stored-data decoders --------------------------------------------------------------------

SERIALIZER = JSONSerializer()
FIELDS = FieldCodec(SERIALIZER)
BINARY = b"\x00swf1"

field_maps = st.dictionaries(st.text(max_size=8), st.binary(max_size=40), max_size=4)
json_field_maps = st.dictionaries(
    st.text(max_size=8), json_trees(st.floats(allow_nan=False)), max_size=4
).map(FIELDS.encode_all)
packed_blobs = st.one_of(
    st.binary(max_size=300),
    st.binary(max_size=300).map(lambda b: BINARY + b),
    json_values.map(dumped),
)


def test_fuzz_packed_fields() -> None:
    @fuzz_settings(PARSER_EXAMPLES)
    @given(st.one_of(packed_blobs, field_maps, json_field_maps))
    @example(BINARY + b"\xff\xff\xff\xff")
    @example(b"[" * 5000)
    def run(case: bytes | dict[str, bytes]) -> None:
        counted()
        if isinstance(case, dict):
            unpacked = dict(unpack_fields(pack_fields(case)))
            assert FIELDS.decode(unpacked) == FIELDS.decode(case) if _decodes(case) else True
            assert set(unpacked) == set(case)
            return
        try:
            fields = dict(unpack_fields(case))
        except ValueError:
            return
        assert all(isinstance(v, bytes) for v in fields.values())

    run_counted(run)


def _decodes(fields: dict[str, bytes]) -> bool:
    try:
        FIELDS.decode(fields)
    except ValueError:
        return False
    return True


def test_fuzz_field_decoder() -> None:
    @fuzz_settings(DECODER_EXAMPLES)
    @given(field_maps | json_values.map(lambda v: {"a": dumped({"a": v})}))
    @example({"a": b'{"a":{"$b":"***"}}'})
    @example({"a": b'{"a":{"$dt":"yesterday"}}'})
    @example({"a": b'{"a":{"$td":[1]}}'})
    def run(fields: dict[str, bytes]) -> None:
        counted()
        try:
            data = FIELDS.decode(fields)
        except ValueError:
            return
        assert set(data) == set(fields)

    run_counted(run)


def test_fuzz_payload_documents() -> None:
    """A payload cookie whose signature is valid but whose document is odd (an old format,
    another serializer): refused, or read with finite timestamps; never an exception."""
    payload_format = CookieStore().cookie_format(SECRETS[:1], FIELDS)
    assert isinstance(payload_format, _PayloadFormat)

    @fuzz_settings(DECODER_EXAMPLES)
    @given(meta_bytes)
    @example(b'{"k": "k", "d": {}, "c": NaN, "e": 1}')
    @example(b'{"k": "k", "d": {}, "c": 1, "e": 2, "x": ["age", NaN]}')
    @example(b"[" * 5000)
    def run(raw: bytes) -> None:
        counted()
        decoded = payload_format._read(raw, False)
        if decoded is not None:
            assert decoded.payload is not None
            payload = decoded.payload
            assert math.isfinite(payload.created_at)
            assert math.isfinite(payload.expires_at)
            assert payload.expiry is None or math.isfinite(payload.expiry.value)

    run_counted(run)


# -- end to end: both middlewares fed random Cookie headers -------------------------------------

CONFIGS = ["plain-keys", "signed-keys", "cookie-signed", "cookie-encrypted"]
PATHS = ["/read", "/set"]


@dataclass
class Harness:
    """One middleware per configuration around the test app; one seeded session each."""

    call: Callable[[str, str, list[bytes]], tuple[int, list[tuple[str, str]], bytes]]
    joined: bool  # WSGI: the Cookie headers arrive joined in one environ value
    store: CountingStore = field(default_factory=lambda: CountingStore(MemoryStore()))
    valid: dict[str, str] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def options(self, config: str) -> dict[str, Any]:
        every: dict[str, dict[str, Any]] = {
            "plain-keys": {"store": self.store},
            "signed-keys": {"store": self.store, "secret_key": SECRETS},
            "cookie-signed": {"store": CookieStore(), "secret_key": SECRETS},
            "cookie-encrypted": {"store": CookieStore(encrypt=True), "secret_key": SECRETS},
        }
        return every[config]

    def seed(self) -> None:
        for config in CONFIGS:
            status, headers, _ = self.call(config, "/seed", [])
            assert status == 200
            (cookie,) = [v for n, v in headers if n.lower() == "set-cookie"]
            self.valid[config] = cookie.partition(";")[0].partition("=")[2]
            _, _, body = self.call(config, "/read", [f"{NAME}={self.valid[config]}".encode()])
            self.keys[config] = json.loads(body)["key"]

    def check(self, config: str, path: str, cookies: list[bytes]) -> None:
        counted()
        self.store.reset()
        status, _, body = self.call(config, path, cookies)
        assert status == 200, (status, body)
        state = json.loads(body)
        texts = [c.decode("latin-1") for c in cookies]
        genuine = (
            find_cookie(["; ".join(texts)] if self.joined else texts, NAME) == self.valid[config]
        )
        calls = self.store.calls
        if genuine:
            assert state["key"] == self.keys[config]
            assert state["data"]["user"] == "ada"
        elif path == "/read":
            assert state == {"key": None, "data": {}}, "an invalid cookie loaded a session"
        else:
            assert state == {"key": None, "data": {"fuzz": "1"}}
            assert calls["update"] == calls["delete"] == 0, calls
        if path == "/read":
            assert self.store.writes == 0, calls
        if config == "signed-keys" and not genuine:
            assert calls["load"] == 0, "a bad signature reached the store"
        if config in ("plain-keys", "signed-keys"):
            kept = self.store.inner.load(self.keys[config], time.time())
            assert isinstance(kept, Record)
            assert FIELDS.decode(kept.fields)["user"] == "ada"


def cookie_headers(valid: list[str]) -> st.SearchStrategy[list[bytes]]:
    values = st.one_of(st.sampled_from(valid), mutated(valid), latin1_text)
    names = st.one_of(st.sampled_from([NAME, f" {NAME}", f"{NAME} ", "other", ""]), latin1_text)
    pair = st.tuples(names, values).map(lambda p: f"{p[0]}={p[1]}")
    structured = st.lists(pair, min_size=1, max_size=4).map(
        lambda pairs: "; ".join(pairs).encode("latin-1")
    )
    header = st.one_of(structured, st.binary(max_size=300), structured.map(lambda b: b + b"\xff"))
    return st.lists(header, min_size=1, max_size=3)


def _end_to_end(harness: Harness) -> None:
    harness.seed()
    valid = list(harness.valid.values())

    @fuzz_settings(END_TO_END_EXAMPLES)
    @given(st.sampled_from(CONFIGS), st.sampled_from(PATHS), cookie_headers(valid))
    @example(
        "cookie-encrypted", "/read", [f"{NAME}={harness.valid['cookie-encrypted']}!!".encode()]
    )
    def run(config: str, path: str, cookies: list[bytes]) -> None:
        harness.check(config, path, cookies)

    run_counted(run)


def handle(path: str, session: Session) -> bytes:
    """The fuzzed app: ``/read`` shows the session, ``/set`` also writes ``fuzz=1``,
    ``/seed`` writes ``user=ada`` (the session each configuration starts with)."""
    if path == "/set":
        session["fuzz"] = "1"
    elif path == "/seed":
        session["user"] = "ada"
    return json.dumps({"key": session.session_key, "data": dict(session)}).encode()


async def asgi_app(scope: Scope, receive: Receive, send: Send) -> None:
    body = handle(scope["path"], scope["session"])
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def test_fuzz_asgi_middleware_with_random_cookie_headers() -> None:
    apps: dict[str, SessionMiddleware] = {}

    async def request(
        config: str, target: str, cookies: list[bytes]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path, _, query = target.partition("?")
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [(b"host", b"testserver")] + [(b"cookie", c) for c in cookies],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        sent: list[Message] = []

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)

        await apps[config](scope, receive, send)
        headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in sent[0]["headers"]]
        return sent[0]["status"], headers, b"".join(m.get("body", b"") for m in sent[1:])

    with asyncio.Runner() as runner:

        def call(
            config: str, target: str, cookies: list[bytes]
        ) -> tuple[int, list[tuple[str, str]], bytes]:
            return runner.run(request(config, target, cookies))

        harness = Harness(call, joined=False)
        for config in CONFIGS:
            apps[config] = SessionMiddleware(asgi_app, **harness.options(config))
        _end_to_end(harness)


def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
    body = handle(environ["PATH_INFO"], environ["sessionware.session"])
    start_response("200 OK", [("Content-Type", "application/json")])
    return [body]


def test_fuzz_wsgi_middleware_with_random_cookie_headers() -> None:
    apps: dict[str, WSGISessionMiddleware] = {}

    def call(
        config: str, target: str, cookies: list[bytes]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        path, _, query = target.partition("?")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "SERVER_NAME": "testserver",
            "SERVER_PORT": "80",
            "wsgi.url_scheme": "http",
        }
        if cookies:  # PEP 3333: header bytes arrive as latin-1 text, repeated headers joined
            environ["HTTP_COOKIE"] = "; ".join(c.decode("latin-1") for c in cookies)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: None

        result = apps[config](environ, start_response)
        try:
            body = b"".join(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        return int(started[0][:3]), started[1], body

    harness = Harness(call, joined=True)
    for config in CONFIGS:
        apps[config] = WSGISessionMiddleware(wsgi_app, **harness.options(config))
    _end_to_end(harness)


def test_the_fuzz_inputs_are_typed_as_the_decoders_expect() -> None:
    """Guards the harness itself: the seeded values decode, so refusals are meaningful."""
    codec = CookieStore(encrypt=True).cookie_format(SECRETS, FIELDS)
    now = time.time()
    assert codec.decode(codec.encode(KEYS[0], Payload({}, now, now + 5))) is not None
    assert ROTATING.unsign(SIGNED[-1]) == (KEYS[-1], True)
    assert isinstance(find_cookie([f"{NAME}=a; {NAME}=b"], NAME), Duplicated)
