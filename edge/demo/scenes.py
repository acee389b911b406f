"""Camera feeds for the demo, rendered from the labelled scenes shipped in tests/scenes (real photos and
composed scenes, see tests/scenes/README.md) and the real clip in tests/data."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCENES = ROOT / "tests" / "scenes"
DATA = ROOT / "tests" / "data"


def scene_frames(name: str, speed: float, fps: float):
    """Render a labelled scene into a looping MJPEG Scene whose timeline runs `speed` times faster."""
    from edge.analytics.scenes import Composer, load_scene
    from simulators.cameras.scene import Scene

    scene = load_scene(SCENES / name)
    samples = list(Composer(scene).samples())
    steps = []
    for i, (t, _seg, frame) in enumerate(samples):
        t_next = samples[i + 1][0] if i + 1 < len(samples) else scene.duration_s
        steps.append((frame, max(1.0 / fps, (t_next - t) / speed)))
    return Scene.scripted(steps, fps=fps), scene


def clip_frames(file: str, width: int = 640, height: int = 360):
    from simulators.cameras.scene import Scene

    return Scene.from_video(DATA / file, width=width, height=height)
