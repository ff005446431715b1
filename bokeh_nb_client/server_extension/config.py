"""``BokehProxy``: the settings of the proxy, read from the Jupyter server's config.

Set them like any Jupyter server option, in ``jupyter_server_config.py``::

    c.BokehProxy.allowed_ports = [5006, 5100]
    c.BokehProxy.allow_registered_ports = False

or on the command line (repeat the option for each port)::

    jupyter lab --BokehProxy.allowed_ports=5006 --BokehProxy.allowed_ports=5100
"""

from __future__ import annotations

from traitlets import Bool, CInt, Float, Int, List, TraitError, validate
from traitlets.config import Configurable

from .contract import valid_port

__all__ = ["BokehProxy"]


class BokehProxy(Configurable):
    """Which Bokeh servers the proxy reaches, and its limits.

    The proxy only ever connects to this machine's loopback interface
    (``127.0.0.1``, then ``::1``); a port is reachable when it is in
    :attr:`allowed_ports` or, with :attr:`allow_registered_ports`, when a kernel
    of this Jupyter server registered it by showing a session of a Bokeh server on
    it. Every other port is refused with 403.
    """

    allowed_ports = List(
        # CInt: one --BokehProxy.allowed_ports=N on the command line arrives as a string
        CInt(),
        default_value=[5006],
        help=(
            "Ports of Bokeh servers on this host that the proxy always reaches "
            "(bokeh serve listens on 5006 by default)."
        ),
    ).tag(config=True)

    allow_registered_ports = Bool(
        True,
        help=(
            "Also reach the ports that kernels started by this Jupyter server register "
            "when they show a Bokeh session (show(), %bokeh_show). Kernels run as the "
            "server's user, so this grants nothing that user's code could not reach; "
            "set False to allow allowed_ports only."
        ),
    ).tag(config=True)

    connect_timeout = Float(10.0, help="Seconds allowed to connect to a Bokeh server.").tag(
        config=True
    )

    request_timeout = Float(
        60.0, help="Seconds allowed for one proxied HTTP request (autoload script, resources)."
    ).tag(config=True)

    max_message_size = Int(
        20 * 1024 * 1024,
        help=(
            "Largest websocket message relayed, in bytes, in each direction; the default "
            "matches bokeh serve's --websocket-max-message-size."
        ),
    ).tag(config=True)

    @validate("allowed_ports")
    def _ports(self, proposal: dict[str, object]) -> list[int]:
        ports = proposal["value"]
        if not isinstance(ports, list):
            raise TraitError(f"expected a list of ports, got {ports!r}")
        bad = [port for port in ports if not (isinstance(port, int) and valid_port(port))]
        if bad:
            raise TraitError(f"not TCP ports: {bad!r}")
        return [int(port) for port in ports]

    @validate("connect_timeout", "request_timeout")
    def _positive(self, proposal: dict[str, object]) -> float:
        value = proposal["value"]
        if not isinstance(value, float) or value <= 0:
            raise TraitError(f"must be a positive number of seconds, got {value!r}")
        return value
