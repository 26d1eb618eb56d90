"""Security properties of sessionware, proven through both middlewares (see SECURITY.md)."""
