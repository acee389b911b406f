"""Docs stay true: the README's config reference is generated from the models, and every `edge ...` command shown
in a doc parses with the real CLI (subcommands and flags exist)."""
import re
import shlex
from pathlib import Path

import pytest

from edge.cli import build_parser
from edge.config.reference import reference_markdown

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "```"
    assert lines[1].startswith("./run demo ") and lines[2].startswith("./run test ")


def test_readme_config_reference_is_current():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split(START, 1)[1].split(END, 1)[0]
    assert block.strip() == reference_markdown().strip(), \
        "README config reference is stale: run `python -m tests.test_docs` to regenerate it"


def _doc_commands():
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]:
        in_code = False
        lines = path.read_text(encoding="utf-8").splitlines()
        n = 0
        while n < len(lines):
            line = lines[n]
            n += 1
            if line.strip().startswith("```"):
                in_code = not in_code
                continue
            if not in_code:
                continue
            while line.rstrip().endswith("\\") and n < len(lines):  # shell line continuation
                line = line.rstrip()[:-1] + " " + lines[n].strip()
                n += 1
            cmd = line.split(" #", 1)[0].strip()
            cmd = re.sub(r"^(sudo\s+(-u\s+\S+\s+)?)?(\S*/)?", "", cmd) if cmd.startswith(("sudo ", "/")) else cmd
            if cmd.startswith("edge ") and not cmd.startswith("edge.yaml"):
                yield pytest.param(cmd, id=f"{path.relative_to(ROOT)}:{n}")


@pytest.mark.parametrize("command", list(_doc_commands()))
def test_documented_command_parses(command):
    argv = shlex.split(command.replace("…", "x"))[1:]
    argv = [a for a in argv if a not in ("|", ">", "2>&1") and not a.startswith(">")]
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        pytest.fail(f"documented command does not parse: {command} (exit {exc.code})")
    assert getattr(args, "func", None) is not None, command


def regenerate() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + "\n" + reference_markdown() + END + tail, encoding="utf-8")


if __name__ == "__main__":
    regenerate()
