"""A store of large images ships its gallery as WebP (or JPEG) tiles; the findings page shows that file."""

from click.testing import CliRunner
from PIL import Image

from lotterysite.cli import main
from lotterysite.store import read_manifest, write_manifest


def test_a_webp_gallery_reaches_the_findings_page(make_store, tmp_path):
    store = make_store(tmp_path / "store")
    with Image.open(store / "gallery.png") as im:
        im.convert("RGB").save(store / "gallery.webp", quality=80)
    (store / "gallery.png").unlink()
    manifest = read_manifest(store)
    manifest["files"]["gallery.webp"] = manifest["files"].pop("gallery.png")
    write_manifest(store, {**manifest, "gallery": "gallery.webp"})
    docs = tmp_path / "docs"
    docs.mkdir()
    result = CliRunner().invoke(main, ["render", str(store), str(docs)])
    assert result.exit_code == 0, result.output
    findings = (docs / "lotterysite/findings/index.md").read_text()
    assert 'src="../data/gallery.webp"' in findings and "gallery.png" not in findings
    assert (docs / "lotterysite/data/gallery.webp").read_bytes() == (store / "gallery.webp").read_bytes()
    # A manifest naming a file that is not a gallery's is not served, whatever it lists.
    write_manifest(store, {**manifest, "gallery": "models.arrow"})
    again = tmp_path / "docs2"
    again.mkdir()
    assert CliRunner().invoke(main, ["render", str(store), str(again)]).exit_code == 0
    assert "no gallery" in (again / "lotterysite/findings/index.md").read_text()
