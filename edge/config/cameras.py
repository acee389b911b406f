from __future__ import annotations

from pydantic import Field, field_validator

from .base import Id, Secret, Strict


class MotionConfig(Strict):
    enabled: bool = True
    threshold: float = Field(default=0.004, gt=0, lt=1, description="fraction of changed pixels that counts as motion")
    recheck_s: float = Field(default=30, gt=0, description="run the detector at least this often even without motion "
                                                          "(finds objects that never move)")
    pixel_threshold: int = Field(default=25, ge=1, le=255,
                                 description="grey-level difference (after lighting compensation) that counts as "
                                             "a changed pixel")
    lighting_fraction: float = Field(default=0.5, gt=0, le=1,
                                     description="a change over more than this fraction of the frame at once is a "
                                                 "lighting change (lights, IR switch): relearned, not motion")


class CameraConfig(Strict):
    id: Id
    name: str = ""
    url: str = Field(description="rtsp://... (Hikvision sub-stream /Streaming/Channels/102, Dahua "
                                 "/cam/realmonitor?channel=1&subtype=1), http(s)://... (MJPEG stream or JPEG "
                                 "snapshot, told apart by Content-Type), or file:///path (looped)")
    snapshot_url: str | None = Field(default=None, description="the camera's own JPEG snapshot URL (full "
                                     "resolution evidence images while detection uses the sub-stream), e.g. "
                                     "Hikvision http://HOST/ISAPI/Streaming/channels/101/picture")
    username: str | None = None
    password: Secret | None = None
    detect_fps: float = Field(default=5, gt=0, le=30)
    width: int = Field(default=640, ge=64, le=3840)
    height: int = Field(default=360, ge=64, le=2160)
    offline_after_s: float = Field(default=10, gt=0)
    open_timeout_s: float = Field(default=10, gt=0)
    read_timeout_s: float = Field(default=5, gt=0)
    reconnect_min_s: float = Field(default=1, gt=0, description="first retry delay after a failed connection")
    reconnect_max_s: float = Field(default=30, gt=0, description="retry delay cap (doubles per failure up to this)")
    model: str = Field(default="default", description="detector model name from models/, or \"none\" for "
                                                      "capture, motion and snapshots without detection")
    motion: MotionConfig = Field(default_factory=MotionConfig)

    @field_validator("url")
    @classmethod
    def _scheme(cls, v: str) -> str:
        if not v.split("://", 1)[0] in ("rtsp", "rtsps", "http", "https", "file"):
            raise ValueError(f"{v!r} has an unsupported scheme")
        return v


class ModelsConfig(Strict):
    threads: int = Field(default=1, ge=1, le=16, description="onnxruntime intra-op threads")
    default: str = Field(default="ssd_mobilenet_v2_coco", description="model used by cameras with model: default")
    extra_dirs: list[str] = Field(default_factory=list, description="more folders with .onnx + manifest files")
