"""Quiet logs: third-party INFO lines stay out, our INFO lines stay in, bars only on a terminal."""

from __future__ import annotations

import io
import logging

from lwd.utils.logs import configure_logging, show_progress


def test_third_party_info_is_hidden_and_ours_is_shown(capsys):
    root = logging.getLogger()
    saved = (root.level, list(root.handlers), logging.getLogger("lwd").level)
    try:
        for h in list(root.handlers):
            root.removeHandler(h)
        configure_logging()
        logging.getLogger("sentence_transformers.SentenceTransformer").info("Load pretrained model")
        logging.getLogger("httpx").info("HTTP Request: GET")
        logging.getLogger("lwd.pipeline.collect").info("collected 40 episodes")
        logging.getLogger("urllib3").warning("a real warning")
        err = capsys.readouterr().err
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[1]:
            root.addHandler(h)
        root.setLevel(saved[0])
        logging.getLogger("lwd").setLevel(saved[2])
    assert "collected 40 episodes" in err and "a real warning" in err
    assert "Load pretrained" not in err and "HTTP Request" not in err


def test_progress_bars_only_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert show_progress(True, Tty()) and not show_progress(False, Tty())
    assert not show_progress(True, io.StringIO())  # a pipe or log file: no bar frames
