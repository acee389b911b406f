"""County platform simulator (consumer side of the uplink contract)."""
from .county import County, GatewayTrack

__all__ = ["County", "GatewayTrack"]
