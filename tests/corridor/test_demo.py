"""``corridor demo`` tells the whole agreement story, as a newcomer would run it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from corridor.cli import main


def test_the_demo_runs_the_agreement_story_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    result = CliRunner().invoke(main, ["demo", "--dir", str(root), "--observations", "2000"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # undo the console's line wrapping
    for step in ("The registry runs at", "joined the registry", "published cn-ntlnp/",
                 "ru-lotl asked for", "narrowed it to leopards and tigers",
                 "accepted the narrowed terms", "fetched", "verified it offline",
                 "revoked the agreement", "was refused: agreement ru-lotl."):
        assert step in text, step
    assert "revoked by cn-ntlnp" in text and "What happened" in text
    packages = list((root / "ru-lotl" / "received").glob("*.zip"))
    assert len(packages) == 1  # the refused fetch left nothing behind
    assert {p.name for p in root.iterdir()} >= {"registry", "ru-lotl", "cn-ntlnp"}
