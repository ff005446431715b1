"""What the Jupyter server extension and the kernel agree on (stdlib only).

The server extension (:mod:`bokeh_nb_client.server_extension`) runs in the
Jupyter server process; the inline views are made in the kernel
(:mod:`bokeh_nb_client.jupyter.display`). The two never import each other's
dependencies, and share only this module:

* where the proxy lives under the Jupyter base URL (:data:`PROXY_PATH`), and its
  status endpoint (:data:`STATUS_PATH`);
* the environment variables the extension sets in the server process, which every
  kernel the server starts inherits: :data:`ENV_PROXY` says "this kernel was
  started by a Jupyter server that proxies Bokeh servers", and
  :data:`ENV_PORTS_DIR` names the directory in which a kernel registers the
  ports of the Bokeh servers it shows (:class:`PortRegistry`);
* which hosts count as "the Jupyter host" (:func:`is_loopback_host`).

Invariant: importing this module imports only the standard library (the kernel
imports it on every ``show()``; tornado and jupyter_server stay in the server).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import tempfile
from pathlib import Path

__all__ = [
    "ENV_PORTS_DIR",
    "ENV_PROXY",
    "PROXY_PATH",
    "STATUS_PATH",
    "PortRegistry",
    "is_loopback_host",
    "valid_port",
]

#: Path of the proxy under the Jupyter base URL: ``<base_url>bokeh-proxy/<port>/...``.
PROXY_PATH = "bokeh-proxy"

#: The status endpoint, ``<base_url>bokeh-proxy/api/status?port=N`` (JSON, authenticated).
STATUS_PATH = "api/status"

#: Set (to :data:`PROXY_PATH`) in the Jupyter server's environment by the extension.
ENV_PROXY = "BOKEH_NB_CLIENT_PROXY"

#: Set to the port registry directory in the Jupyter server's environment.
ENV_PORTS_DIR = "BOKEH_NB_CLIENT_PROXY_PORTS"

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def is_loopback_host(host: str | None) -> bool:
    """Whether ``host`` (a URL's hostname) names this machine's loopback interface.

    ``localhost`` and its usual aliases, ``127.0.0.0/8`` and ``::1`` are loopback;
    everything else, including this machine's other names and addresses, is not.
    """
    if not host:
        return False
    name = host.strip("[]").lower().rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def valid_port(port: int) -> bool:
    """Whether ``port`` is a TCP port number (1-65535)."""
    return 0 < port < 65536


class PortRegistry:
    """Ports that kernels registered for the proxy: one empty file per port.

    The Jupyter server creates the directory (private to its user) and removes it
    when it stops; kernels, which run as the same user and inherit the directory's
    path in :data:`ENV_PORTS_DIR`, add a file named after a port before they show
    a view of a Bokeh server on that port. Registration lasts until the Jupyter
    server stops.

    Why files: a kernel has no credentials for the Jupyter server's API, while the
    file system already tells "the same user as the server" apart from anyone
    else, which is exactly who may register a port.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @classmethod
    def create(cls, parent: Path | None = None) -> PortRegistry:
        """Make a fresh private directory (mode 0700) under ``parent``."""
        if parent is not None:
            parent.mkdir(parents=True, exist_ok=True)
        return cls(Path(tempfile.mkdtemp(prefix="bokeh-proxy-ports-", dir=parent)))

    @classmethod
    def from_environment(cls) -> PortRegistry | None:
        """The registry named by :data:`ENV_PORTS_DIR`, or None when it is not set."""
        directory = os.environ.get(ENV_PORTS_DIR)
        return cls(Path(directory)) if directory else None

    def register(self, port: int) -> None:
        """Allow ``port``.

        Raises:
            ValueError: ``port`` is not a TCP port number.
            OSError: the directory is gone or not writable (the Jupyter server
                stopped, or the kernel runs as another user).
        """
        if not valid_port(port):
            raise ValueError(f"not a TCP port: {port!r}")
        (self.directory / str(port)).touch()

    def __contains__(self, port: object) -> bool:
        return isinstance(port, int) and valid_port(port) and (self.directory / str(port)).exists()

    def remove(self) -> None:
        """Delete the directory and every registration in it (the server is stopping)."""
        shutil.rmtree(self.directory, ignore_errors=True)
