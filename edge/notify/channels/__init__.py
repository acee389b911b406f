"""Push channels by config `type`."""
from . import dingtalk, feishu, webhook, wecom
from .base import PushError, PushRequest

CHANNELS = {"webhook": webhook, "wecom": wecom, "dingtalk": dingtalk, "feishu": feishu}

__all__ = ["CHANNELS", "PushError", "PushRequest"]
