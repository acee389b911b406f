"""Where things live on an installed gateway (install.sh, the unit, provision and doctor agree on these).

Every path can be re-rooted (`Layout(root=...)`) so provisioning and installing are tested in a temporary
directory exactly as they run on a device.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

UNIT_NAME = "edge-gateway.service"


@dataclasses.dataclass(frozen=True)
class Layout:
    root: Path = Path("/")

    def _p(self, absolute: str) -> Path:
        return self.root / absolute.lstrip("/")

    @property
    def etc(self) -> Path:
        return self._p("/etc/edge-gateway")

    @property
    def config(self) -> Path:
        return self.etc / "edge.yaml"

    @property
    def credentials(self) -> Path:
        """Secrets owned by root, mode 0700; the unit hands them over with LoadCredential=."""
        return self.etc / "credentials"

    @property
    def key(self) -> Path:
        return self.credentials / "gateway.key"

    @property
    def csr(self) -> Path:
        return self.etc / "gateway.csr"

    @property
    def cert(self) -> Path:
        return self.etc / "gateway.crt"

    @property
    def ca(self) -> Path:
        return self.etc / "county-ca.pem"

    @property
    def state(self) -> Path:
        return self._p("/var/lib/edge-gateway")

    @property
    def unit_dropin_dir(self) -> Path:
        return self._p(f"/etc/systemd/system/{UNIT_NAME}.d")

    @property
    def credentials_dropin(self) -> Path:
        return self.unit_dropin_dir / "credentials.conf"

    def boot_files(self) -> list[Path]:
        """Identity file on the FAT boot partition (editable from any laptop before first boot)."""
        return [self._p("/boot/firmware/edge-gateway.yaml"), self._p("/boot/edge-gateway.yaml")]


def resolve_credential(path: str | Path, layout: Layout | None = None) -> Path:
    """A relative secret path means a systemd credential: $CREDENTIALS_DIRECTORY inside the service,
    the credentials folder of the installation when an installer runs a command by hand."""
    p = Path(path)
    if p.is_absolute():
        return p
    cred_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if cred_dir:
        return Path(cred_dir) / p
    return (layout or Layout()).credentials / p
