"""Runtime: components, bus, supervisor, gateway process."""
from .bus import EventBus
from .component import Component
from .context import RuntimeContext
from .gateway import Gateway
from .supervisor import Supervisor

__all__ = ["Component", "EventBus", "Gateway", "RuntimeContext", "Supervisor"]
