"""Reading a store as the site and `info` do: issue 22's reading defects, each reproduced. Every file is read once
and shipped as the bytes verified; the manifest is checked against the data; a malformed field, a name with
terminal controls, a read-only or full docs folder are one line; no two architectures share pages; an author's
page is never replaced."""

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from click.testing import CliRunner

from lotterysite.cli import main
from lotterysite.site import data, render
from lotterysite.store import StoreError, read_manifest, read_table, write_manifest, write_table
from lotterysite.store.info import describe


@pytest.fixture
def store(make_store, tmp_path):
    return make_store(tmp_path / "store")


def one_line(result) -> bool:
    return result.exit_code == 1 and result.output.strip().count("\n") == 0 and "Traceback" not in result.output


def rewrite_manifest(store: Path, edit) -> None:
    """Edit the manifest, digests recomputed (as someone "repairing" a store by hand would)."""
    manifest = json.loads((store / "manifest.json").read_text())
    edit(manifest)
    write_manifest(store, manifest)


def rename_class(store: Path, old: str, new: str) -> None:
    """Rename a class in samples.arrow and the manifest alike: a store whose names agree."""
    table = read_table(store / "samples.arrow")
    names = table["class_name"].cast(pa.string())
    kind = table.schema.field("class_name").type
    column = pc.if_else(pc.equal(names, old), new, names).dictionary_encode().cast(kind)
    table = table.set_column(table.schema.get_field_index("class_name"), "class_name", column)
    meta = {k.decode().removeprefix("lotterysite."): v.decode() for k, v in (table.schema.metadata or {}).items()
            if k != b"lotterysite.schema_version"}  # fmt: skip
    write_table(store / "samples.arrow", table.replace_schema_metadata(None), metadata=meta)
    classes = [new if c == old else c for c in read_manifest(store)["dataset"]["classes"]]
    rewrite_manifest(store, lambda m: m["dataset"].update(classes=classes))


# -- D7: each file read once; the site is made of the bytes verified --------------------------------------------
def test_files_changed_after_the_check_never_reach_the_site(store, tmp_path):
    """render verified the gallery, then copied it by path ~16 s later: a symlink swapped in between put a private
    file into the public site, and a store published in between gave a site mixed from two runs."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:SECRET-7f3a")
    loaded = data.load_store(store)
    gallery = (store / "gallery.png").read_bytes()
    (store / "gallery.png").unlink()
    (store / "gallery.png").symlink_to(secret)
    geometry = sorted((store / "geometry").iterdir())
    for path in geometry:
        path.write_bytes(b"republished by another run")
    written = render.write(render.render(loaded), tmp_path / "docs" / "lotterysite")
    site = tmp_path / "docs" / "lotterysite"
    assert (site / "data" / "gallery.png").read_bytes() == gallery
    assert not any(b"SECRET-7f3a" in p.read_bytes() for p in site.rglob("*") if p.is_file())
    assert len(written) > 10


def test_a_folder_of_the_store_linked_elsewhere_is_refused(store, tmp_path):
    os.rename(store / "geometry", tmp_path / "elsewhere")
    (store / "geometry").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(StoreError, match="geometry/.*a link, or below one"):
        data.load_store(store)


# -- D17: the manifest checked against the data; only listed files read ------------------------------------------
def test_class_names_swapped_in_the_manifest_are_refused(store):
    def swap(m):
        c = m["dataset"]["classes"]
        c[0], c[1] = c[1], c[0]

    rewrite_manifest(store, swap)
    with pytest.raises(StoreError, match=r"field 'dataset.classes' names label 0 .*samples.arrow .* disagree"):
        data.load_store(store)
    result = CliRunner().invoke(main, ["info", str(store)])
    assert one_line(result) and "disagree" in result.output, result.output


@pytest.mark.parametrize("name", ["outcomes.arrow", "samples.arrow"])
def test_a_file_the_manifest_does_not_list_is_never_read(store, name):
    rewrite_manifest(store, lambda m: m["files"].pop(name))
    with pytest.raises(StoreError, match=rf"{name}.* not listed|does not list {name}"):
        data.load_store(store)
    with pytest.raises(StoreError, match=rf"does not list {name}|{name}"):
        describe(store)


# -- D16: malformed manifest fields are one line ------------------------------------------------------------------
@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["dataset"].update(n_eval="many"), r"field 'dataset.n_eval' is 'many', not a whole number"),
        (lambda m: m["dataset"].update(classes=None), r"field 'dataset.classes' is None, not a non-empty list"),
        (lambda m: m["dataset"].update(classes=[None] * 10), r"field 'dataset.classes' is \[None"),
        (lambda m: m.update(severities="1,3"), r"field 'severities' is '1,3'"),
        (lambda m: m["models"][0].update(arch=3), r"field 'models\[0\]' is .*, not an object with the strings"),
    ],
    ids=["n_eval", "classes-null", "class-null", "severities", "arch"],
)
def test_malformed_manifest_fields_are_one_line(store, edit, message):
    rewrite_manifest(store, edit)
    (store.parent / "docs").mkdir()
    for command in (["info", str(store)], ["render", str(store), str(store.parent / "docs")]):
        result = CliRunner().invoke(main, command)
        assert one_line(result), result.output
        assert re.search(message, result.output), result.output


# -- D21: terminal controls in names are printed escaped ---------------------------------------------------------
def test_info_never_sends_terminal_controls(store):
    first = read_manifest(store)["dataset"]["classes"][0]
    rename_class(store, first, "evil\x1b]0;pwned\x07\x1b[2J\nfake line")
    text = describe(store)
    assert "\x1b" not in text and "\x07" not in text and "fake line" in text
    assert not any(line.startswith("fake line") for line in text.splitlines())
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J\\nfake line" in text


# -- D12: every architecture its own pages ----------------------------------------------------------------------
def test_architectures_whose_names_differ_in_case_or_punctuation_get_their_own_pages():
    slugs = data.unique_slugs(["ResNet", "resnet", "tv:resnet", "tv-resnet", "lenet5"])
    assert len(set(slugs.values())) == 5
    assert slugs["lenet5"] == "lenet5"  # a name alone keeps its plain address
    assert data.unique_slugs(["ResNet", "resnet"]) == data.unique_slugs(["ResNet", "resnet"])  # stable


# -- D22 / D16: render swaps in one step and says what the OS refused in one line --------------------------------
def test_render_leaves_no_old_folder_and_recovers_from_a_kill_between_renames(tmp_path, monkeypatch):
    target = tmp_path / "docs" / "lotterysite"
    render.write(render.Rendered(files={"index.md": "# one"}), target)
    render.write(render.Rendered(files={"index.md": "# two"}), target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["lotterysite"]
    # Without an atomic exchange: killed between the two renames, the next render puts the previous folder back
    # before anything else, and leaves no .old behind.
    monkeypatch.setattr(render, "exchange", lambda a, b: False)
    old = target.parent / ".lotterysite.abc.old"
    os.rename(target, old)
    assert not target.exists()
    render.check_folder(target)
    render.write(render.Rendered(files={"index.md": "# three"}), target)
    assert (target / "index.md").read_text() == "# three"
    assert sorted(p.name for p in target.parent.iterdir()) == ["lotterysite"]


def test_render_into_a_read_only_docs_folder_is_one_line(store, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    os.chmod(docs, 0o555)
    try:
        result = CliRunner().invoke(main, ["render", str(store), str(docs)])
    finally:
        os.chmod(docs, 0o755)
    assert one_line(result) and "docs: is read-only" in result.output, result.output


def test_render_into_a_full_disk_is_one_line_and_keeps_the_previous_pages(tmp_path):
    """A full disk (here: a file size limit, which fails the same writes) gave a traceback."""
    target = tmp_path / "docs" / "lotterysite"
    render.write(render.Rendered(files={"index.md": "# old"}), target)
    code = (
        "import sys\nfrom pathlib import Path\nfrom lotterysite.errors import LotterysiteError\n"
        "from lotterysite.site import render\n"
        f"try:\n    render.write(render.Rendered(files={{'big.arrow': b'x' * 100000}}), Path({str(target)!r}))\n"
        "except LotterysiteError as e:\n    print(e)\n    sys.exit(1)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (50000, 50000)))  # fmt: skip
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    assert "big.arrow: cannot write (File too large)" in out.stdout
    assert (target / "index.md").read_text() == "# old"
    assert sorted(p.name for p in target.parent.iterdir()) == ["lotterysite"]


# -- D20: the plugin keeps an author's page at a generated address -------------------------------------------------
def test_the_plugin_keeps_an_authors_page_at_a_generated_path(store, tmp_path, caplog):
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n")
    (docs / "findings.md").write_text("# My own findings\n\nWritten by hand.\n")
    (tmp_path / "mkdocs.yml").write_text(f"site_name: t\nplugins:\n  - lotterysite:\n      store: {store}\n")
    config = load_config(str(tmp_path / "mkdocs.yml"))
    with caplog.at_level("WARNING"):
        build(config)
    assert "Written by hand." in (tmp_path / "site" / "findings" / "index.html").read_text()
    assert "findings.md is your page" in caplog.text


def test_render_never_writes_through_a_linked_folder(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    render.write(render.Rendered(files={"index.md": "# mine"}), elsewhere)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "lotterysite").symlink_to(elsewhere)
    with pytest.raises(render.RenderError, match="is a symbolic link"):
        render.write(render.Rendered(files={"index.md": "# new"}), tmp_path / "docs" / "lotterysite")
    assert (elsewhere / "index.md").read_text() == "# mine"


def test_two_architectures_differing_in_case_render_to_separate_pages(make_derived_store, tmp_path):
    """Two architectures "lenet5" and "LeNet5" shared one set of pages: the second silently overwrote the first."""
    base = read_manifest(make_derived_store(tmp_path / "probe"))
    moved = [m["model_id"] for m in base["models"] if m["method"] == "random"]
    store = make_derived_store(tmp_path / "store", models={mid: {"arch": "LeNet5"} for mid in moved},
                               correlations={mid: {"arch": "LeNet5"} for mid in moved})  # fmt: skip

    def edit(m):
        for model in m["models"]:
            if model["model_id"] in moved:
                model["arch"] = "LeNet5"
        m["architectures"] = ["lenet5", "LeNet5"]

    rewrite_manifest(store, edit)
    rendered = render.render(data.load_store(store))
    views = {p.split("/")[1] for p in rendered.files if p.startswith("views/")}
    assert len(views) == 2 and all(v.startswith("lenet5-") for v in views), views
    geometry = {p.split("/")[1] for p in rendered.files if p.startswith("data/") and p.endswith("/correct.arrow")}
    assert geometry == views
