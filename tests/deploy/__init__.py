"""Deployment tests: nginx (TLS, basic auth, two upstreams) in front of real ``bokeh serve``.

A package, so that its ``conftest.py`` is imported as ``deploy.conftest`` and never
takes the place of another directory's ``conftest`` module in ``sys.modules``.
"""
