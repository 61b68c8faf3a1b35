"""`stylegan verify`: what an image says about how it was made."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click


@click.command(epilog="""\b
Examples:
  stylegan verify out/seed0001.png
  stylegan verify downloads/ --json > report.jsonl
  stylegan verify photo.jpg --trust my-ca.pem

\b
Per image, one line: the metadata (what made it), the C2PA manifest (valid: signed by a signer your
--trust anchors vouch for; untrusted: intact, but its signer is not among them; invalid: the file
changed after signing; none), and the invisible watermark (found, with how clearly; not found; too
small to carry one). Finding nothing does not show that an image is real: metadata is lost when an
image is re-encoded, and a watermark when it is heavily cropped, scaled or rotated.

\b
Exit code: 0 when a mark was found in at least one image, 1 when none was, 2 when no file could be read.""")
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image and line, for machines.")
@click.option("--trust", type=click.Path(dir_okay=False), default=None,
              help="PEM file of C2PA trust anchors (or set STYLEGAN_TRUST_ANCHORS).")
@click.option("--fast", is_flag=True, help="Read the watermark only where it was put (no search for crops and resizes).")
def verify(images, as_json, trust, fast):
    """Read provenance back from IMAGES (files or folders): metadata, C2PA manifest, watermark."""
    from stylegan.provenance import verify_paths
    anchors = None
    if trust:
        try:
            anchors = Path(trust).read_bytes()
        except OSError as e:
            raise click.ClickException(f"{trust}: cannot read the trust anchors ({e.strerror or e})") from None
    found = readable = 0
    for result in verify_paths(images, anchors, search=not fast):
        found += result.found
        readable += result.error is None
        if as_json:
            click.echo(json.dumps(result.as_dict()))
        else:
            click.echo(result.line())
    sys.exit(0 if found else 1 if readable else 2)
