"""Modules shared by the interop test apps and the tests themselves.

Nothing here is served as a Bokeh app: ``bokeh serve`` treats every path it is
given as an application, so helpers live beside ``apps/`` rather than inside it.

Both sides import these modules as the package ``apphelpers`` (the apps put
``tests/interop`` on ``sys.path`` first; ``tests/conftest.py`` does the same for
the test process). The shared package name matters for :mod:`custom_models`:
Bokeh names a model class after its module, so a client can only decode a
``BytesHolder`` when it imported the class under the same module name as the
server.
"""
