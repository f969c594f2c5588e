"""The inference engine: raw observations in, absolute joint-target chunks out.

The prefix is computed once per observation and its keys/values serve all K flow steps;
instruction features are cached per string. On CUDA the model runs in bf16 and the K-step loop
is captured once as a CUDA graph over static buffers (replayed per chunk); on the CPU the same
code runs eagerly. Inputs are checked here, so a node only has to report the errors.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from vla_policy.model import Guidance
from vla_policy.model import Observation
from vla_policy.model import Prefix
from vla_policy.model import VlaModel
from vla_policy.normalization import Normalizer


class ObservationError(ValueError):
    """The observation cannot be used (missing camera, wrong image size, NaN state, ...)."""


@dataclass
class Chunk:
    actions: np.ndarray
    """(H, D) absolute joint targets in `joint_names` order."""
    joint_names: list[str]
    inference_ms: float


class PolicyRunner:
    def __init__(
        self,
        model: VlaModel,
        normalizer: Normalizer,
        seed: int = 0,
        cuda_graph: bool = True,
        instruction_cache_size: int = 64,
    ) -> None:
        self.config = model.config
        self.device = model.device
        if self.device.type == 'cuda':
            model = model.to(torch.bfloat16)
        self.model = model.eval()
        self.normalizer = normalizer
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        self._instructions: OrderedDict[str, tuple[torch.Tensor, torch.Tensor]] = OrderedDict()
        self._instruction_cache_size = instruction_cache_size
        self._graph = _CudaGraphLoop(model) if cuda_graph and self.device.type == 'cuda' else None

    # ----- checks and conversions -----

    def instruction_features(self, text: str) -> tuple[torch.Tensor, torch.Tensor]:
        if not text.strip():
            raise ObservationError('the instruction is empty')
        if text not in self._instructions:
            with torch.no_grad():
                self._instructions[text] = self.model.encode_language([text])
            if len(self._instructions) > self._instruction_cache_size:
                self._instructions.popitem(last=False)
        self._instructions.move_to_end(text)
        return self._instructions[text]

    def image_tensor(self, images: Mapping[str, np.ndarray]) -> torch.Tensor:
        """Camera name -> HxWx3 uint8 RGB images, as a (1, cameras, 3, h, w) tensor in [0, 1].

        Each image is checked against the checkpoint's camera shape, then resized for the encoder.
        """
        missing = [c for c in self.config.cameras if c not in images]
        if missing:
            raise ObservationError(f'no image from camera(s) {", ".join(missing)}')
        height, width = self.config.image_size
        batch = []
        for camera in self.config.cameras:
            image = images[camera]
            expected = (*self.config.camera_shapes[camera], 3)
            if image.dtype != np.uint8 or image.shape != expected:
                raise ObservationError(
                    f'camera {camera!r}: got {image.dtype} {"x".join(map(str, image.shape))}, '
                    f'the policy was trained on uint8 {"x".join(map(str, expected))} RGB'
                )
            image = np.ascontiguousarray(image)  # e.g. a bgr8 message seen as RGB
            if image.shape[:2] != (height, width):
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
            batch.append(torch.from_numpy(image))
        stacked = torch.stack(batch).permute(0, 3, 1, 2)[None]
        return stacked.to(self.device, torch.float32) / 255.0

    def state_tensor(self, state: np.ndarray) -> torch.Tensor:
        state = np.asarray(state, dtype=np.float64)
        if state.shape != (self.config.action_dim,):
            raise ObservationError(
                f'state has {state.size} values, the policy needs {self.config.action_dim} '
                f'({", ".join(self.config.joint_names)})'
            )
        if not np.all(np.isfinite(state)):
            bad = [
                n
                for n, v in zip(self.config.joint_names, state, strict=True)
                if not math.isfinite(v)
            ]
            raise ObservationError(f'state is not finite for {", ".join(bad)}')
        return self._padded(
            self.normalizer.normalize('observation.state', state)[None], self.config.max_state_dim
        )

    def _padded(self, values: np.ndarray, width: int | None = None) -> torch.Tensor:
        """(..., D) -> (..., width) zero-padded float32 tensor (default: action width)."""
        width = width or self.config.max_action_dim
        out = np.zeros((*values.shape[:-1], width), dtype=np.float32)
        out[..., : values.shape[-1]] = values
        return torch.from_numpy(out).to(self.device)

    def observation(
        self, images: Mapping[str, np.ndarray], state: np.ndarray, instruction: str
    ) -> Observation:
        language, language_mask = self.instruction_features(instruction)
        return Observation(
            language=language,
            language_mask=language_mask,
            state=self.state_tensor(state),
            images=self.image_tensor(images),
        )

    # ----- inference -----

    def noise(self) -> torch.Tensor:
        c = self.config
        return torch.randn(
            (1, c.chunk_length, c.max_action_dim), generator=self.generator, device=self.device
        )

    @torch.no_grad()
    def infer(
        self,
        images: Mapping[str, np.ndarray],
        state: np.ndarray,
        instruction: str,
        previous: np.ndarray | None = None,
        delay: int = 0,
    ) -> Chunk:
        """Infer one chunk of absolute joint targets.

        `previous` (n, D): the previous chunk's targets for the new chunk's first n times; with
        it, real-time-chunking guidance keeps the start continuous (`delay`: how many actions
        execute while the model runs).
        """
        start = time.perf_counter()
        obs = self.observation(images, state, instruction)
        prefix = self.model.prefix_forward(obs)
        noise = self.noise()
        if previous is not None and len(previous):
            guidance = self.guidance(previous, delay, state)
            x = self.model.integrate(noise, prefix, guidance=guidance)
        elif self._graph is not None:
            x = self._graph(noise, prefix)
        else:
            x = self.model.integrate(noise, prefix)
        actions = x[0, :, : self.config.action_dim].double().cpu().numpy()
        elapsed_ms = (time.perf_counter() - start) * 1e3
        return Chunk(
            actions=self.normalizer.unnormalize_actions(
                actions, state, self.config.relative_joints
            ),
            joint_names=list(self.config.joint_names),
            inference_ms=elapsed_ms,
        )

    def guidance(self, previous: np.ndarray, delay: int, state: np.ndarray) -> Guidance:
        """The previous chunk's plan (absolute targets) as the new chunk's guide from `state`."""
        previous = np.asarray(previous, dtype=np.float64)[: self.config.chunk_length]
        if previous.ndim != 2 or previous.shape[1] != self.config.action_dim:
            raise ObservationError(f'previous chunk has shape {previous.shape}')
        rows = np.zeros((self.config.chunk_length, self.config.action_dim))
        rows[: len(previous)] = self.normalizer.normalize_actions(
            previous, state, self.config.relative_joints
        )
        return Guidance(
            previous=self._padded(rows[None]),
            delay=min(delay, len(previous)),
            available=len(previous),
        )


class _CudaGraphLoop:
    """The K-step flow loop captured once as a CUDA graph over static input buffers."""

    def __init__(self, model: VlaModel) -> None:
        self.model = model
        self.graph: torch.cuda.CUDAGraph | None = None

    def _capture(self, noise: torch.Tensor, prefix: Prefix) -> None:
        self.noise = noise.clone()
        self.prefix = Prefix(  # static buffers the graph reads
            keys_values=[(k.clone(), v.clone()) for k, v in prefix.keys_values],
            mask=prefix.mask.clone(),
            hidden=prefix.hidden,
            target=None if prefix.target is None else prefix.target.clone(),
        )
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):  # warm-up outside the graph, as CUDA graphs require
            for _ in range(2):
                self.model.integrate(self.noise, self.prefix)
        torch.cuda.current_stream().wait_stream(stream)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            self.output = self.model.integrate(self.noise, self.prefix)

    def __call__(self, noise: torch.Tensor, prefix: Prefix) -> torch.Tensor:
        if self.graph is None:
            self._capture(noise, prefix)
        self.noise.copy_(noise)
        static = self.prefix
        for (k_static, v_static), (k, v) in zip(
            static.keys_values, prefix.keys_values, strict=True
        ):
            k_static.copy_(k)
            v_static.copy_(v)
        static.mask.copy_(prefix.mask)
        if static.target is not None:
            static.target.copy_(prefix.target)
        self.graph.replay()
        return self.output.clone()
