"""Numbers no run can use are refused at once: one line with the accepted range, exit code 2.

``--score-floor 2`` used to be accepted (and kept nothing); negative epochs, a batch size of
0, an infinite learning rate are refused the same way, before any model is built or any file
written.
"""

from __future__ import annotations

import pytest

from napari_detlab.cli.main import main


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--epochs", "-1", "epochs must be at least 1, got -1"),
        ("--epochs", "0", "epochs must be at least 1, got 0"),
        ("--batch-size", "0", "batch_size must be at least 1, got 0"),
        ("--lr", "0", "lr must be a positive number, got 0.0"),
        ("--lr", "inf", "lr must be a positive number, got inf"),
        ("--lr", "nan", "lr must be a positive number, got nan"),
        ("--val-fraction", "1.5", "val_fraction must be in [0, 1), got 1.5"),
        ("--val-fraction", "-0.1", "val_fraction must be in [0, 1), got -0.1"),
        ("--max-iterations", "0", "max_iterations must be at least 1, got 0"),
        ("--patience", "0", "patience must be >= 1, got 0"),
        ("--num-workers", "-2", "num_workers must be >= 0"),
        ("--eval-every", "-1", "eval_every must be >= 0, got -1"),
        ("--print-every", "0", "--print-every must be at least 1, got 0"),
    ],
)
def test_train_refuses_numbers_out_of_range(tmp_path, capsys, flag, value, message):
    run = tmp_path / "run"
    code = main(["train", str(tmp_path), "--output", str(run), f"{flag}={value}"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"detlab train: error: {message}"
    assert not run.exists()


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--score-floor", "2", "--score-floor must be between 0 and 1, got 2.0"),
        ("--score-floor", "-0.5", "--score-floor must be between 0 and 1, got -0.5"),
        ("--score-floor", "nan", "--score-floor must be between 0 and 1, got nan"),
        ("--batch-size", "0", "--batch-size must be at least 1, got 0"),
    ],
)
def test_predict_refuses_numbers_out_of_range(tmp_path, capsys, flag, value, message):
    out = tmp_path / "predictions"
    checkpoint = tmp_path / "best.pt"  # never read: the number is refused first
    code = main(
        ["predict", str(checkpoint), str(tmp_path), "--output", str(out), f"{flag}={value}"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == f"detlab predict: error: {message}"
    assert not out.exists()


def test_the_score_floor_is_refused_by_the_prediction_itself(tmp_path):
    """The dock and scripts call ``predict_folder`` directly: it refuses the same way."""
    from napari_detlab.core.model.predict import PredictionError, predict_folder

    with pytest.raises(PredictionError, match=r"between 0 and 1, got 1\.5"):
        predict_folder(tmp_path / "best.pt", tmp_path, tmp_path / "out", score_floor=1.5)
    assert not (tmp_path / "out").exists()
