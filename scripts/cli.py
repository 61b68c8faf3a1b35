"""The `stylegan` command: a click group over thin per-command modules."""
from __future__ import annotations

import contextlib

import click

import stylegan

from .align import align
from .convert import convert
from .dataset import dataset
from .directions import directions_group
from .edit import edit
from .generate import generate
from .info import info
from .metrics import metrics
from .mix import mix
from .models import models
from .ops import ops_group
from .project import project
from .serve import serve
from .train import train
from .verify import verify
from .video import video


class _Main(click.Group):
    """The group; an output that cannot be written, wherever a command meets it, is one line. Every
    command runs with a ProgressPrinter as the library's ambient progress sink, so a download deep
    inside it (a network or face model named by registry name) shows as one (rank 0 alone, under
    torchrun); a command's own printer, entered, takes over within its block."""

    def invoke(self, ctx):
        from stylegan.distributed import is_main
        from stylegan.io.files import WRITE_ERRNOS, WriteError

        from .common import ProgressPrinter
        try:
            with ProgressPrinter() if is_main() else contextlib.nullcontext():
                return super().invoke(ctx)
        except WriteError as e:
            raise click.ClickException(str(e)) from None
        except OSError as e:
            if e.errno not in WRITE_ERRNOS:
                raise
            raise click.ClickException(f"{e.filename or 'output'}: cannot write: {e.strerror}") from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(stylegan.__version__, prog_name="stylegan")
def main():
    """StyleGAN toolkit: generate faces, mix styles, align and project photos, edit latents,
    measure networks (FID and friends), make training data sets, train and fine-tune networks, inspect and
    convert model files, verify
    where an image came from.

    NETWORK arguments take a file path (NVIDIA or TF pickle, rosinality .pt, stylegan file), an
    http(s) URL, or a model name from `stylegan models`."""


for command in (generate, mix, video, align, project, edit, directions_group, dataset, train, metrics, serve,
                verify, info, convert, models, ops_group):
    main.add_command(command)

if __name__ == "__main__":
    main()
