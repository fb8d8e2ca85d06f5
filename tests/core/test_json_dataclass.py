"""Settings files are read strictly: a value of the wrong type is refused, naming the field and
the fix, instead of training something else than the user wrote."""

from __future__ import annotations

import pytest

from napari_detlab.core.errors import DetlabError
from napari_detlab.core.model.config import ConfigError, ModelConfig
from napari_detlab.core.training.options import TrainingInputError, TrainOptions


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"fpn": "false"}', "'fpn' must be true or false, got the text 'false'; write false"),
        ('{"classes": "ab"}', "'classes' must be a list of texts"),
        ('{"classes": "cell"}', 'write ["cell"]'),
        ('{"min_size": "800"}', "'min_size' must be a whole number, got the text '800'"),
        ('{"box_score_thresh": "0.5"}', "'box_score_thresh' must be a number"),
        ('{"min_size": 800.5}', "'min_size' must be a whole number, got 800.5"),
        ('{"anchor_sizes": [[16], "32"]}', "'anchor_sizes' must be a list of lists of numbers"),
        ('{"weights_path": 3}', "'weights_path' must be a text in quotes or null, got 3"),
        ('{"fpn": 1}', "'fpn' must be true or false, got 1"),
    ],
)
def test_config_values_of_the_wrong_type_are_refused_by_name(text, message):
    with pytest.raises(ConfigError, match="config field") as caught:
        ModelConfig.from_json(text)
    assert message in str(caught.value)
    assert isinstance(caught.value, DetlabError)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"epochs": "2"}', "'epochs' must be a whole number, got the text '2'; write 2"),
        ('{"lr": "0.01"}', "'lr' must be a number or null"),
        ('{"augment": "no"}', "'augment' must be true or false, got the text 'no'"),
        ('{"amp": 1}', "'amp' must be true or false or a text in quotes, got 1"),
    ],
)
def test_option_values_of_the_wrong_type_are_refused_by_name(text, message):
    with pytest.raises(TrainingInputError, match="training option field") as caught:
        TrainOptions.from_json(text)
    assert message in str(caught.value)


def test_well_typed_values_still_read():
    config = ModelConfig.from_json(
        '{"classes": ["cell"], "fpn": false, "min_size": 256, '
        '"max_size": 400, "box_score_thresh": 1, "weights_path": null}'
    )
    assert (config.fpn, config.min_size, config.box_score_thresh) == (False, 256, 1.0)
    options = TrainOptions.from_json('{"epochs": 2, "lr": null, "amp": true, "grad_clip": 5}')
    assert (options.epochs, options.lr, options.amp, options.grad_clip) == (2, None, True, 5)
