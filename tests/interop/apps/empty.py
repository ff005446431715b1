"""``/empty``: a document with no roots, for clients that push their own document."""
