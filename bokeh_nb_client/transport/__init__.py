"""Transports: the byte-moving seam under ``Connection``.

``base.Transport`` is the interface; ``websocket.AiohttpTransport`` is the real
one (the only importer of aiohttp).
"""
