"""Grounding scenes as goal-token training batches (`vla train grounding:=`).

Scenes come from `vla grounding` (see `vla_common.grounding`). The goal token guesses the
arm's pose at the grasp of the object an instruction names; a recorded episode says that for
one object per scene, these say it for every object in it. Held-out scenes give the number a
user wants: how often the guess is nearest the asked object rather than another one.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vla_common.errors import ConfigError
from vla_common.grounding import GroundingScenes
from vla_policy.data import ACTION
from vla_policy.data import split_episodes
from vla_policy.model import Observation
from vla_policy.model import VlaModel
from vla_policy.normalization import Normalizer


def _check_field_of_view(scenes: GroundingScenes, camera_shapes: dict) -> None:
    """Refuse scenes rendered at another aspect than the training frames.

    They show a wider or narrower view (MuJoCo keeps the vertical field of view), so a place in
    the image means another place on the table.
    """
    if scenes.rendered_shapes is None:
        return
    for camera, (height, width) in zip(
        scenes.cameras, scenes.rendered_shapes.tolist(), strict=True
    ):
        want = camera_shapes.get(camera)
        if want and abs(width / height - want[1] / want[0]) > 0.01:
            raise ConfigError(
                f'grounding scenes show camera {camera} at {width}x{height}, the training '
                f'frames at {want[1]}x{want[0]}: another field of view. Render them with '
                f'vla grounding camera_size:={want[1]}x{want[0]}'
            )


class GroundingBatches:
    """The scenes at the model's cameras, image size and normalisation, split train / held out."""

    def __init__(
        self,
        scenes: GroundingScenes,
        model: VlaModel,
        normalizer: Normalizer,
        val_fraction: float,
        seed: int,
    ) -> None:
        c = model.config
        if not c.goal_token:
            raise ConfigError('grounding scenes teach the goal token: this model has none')
        if sorted(scenes.joint_names) != sorted(c.joint_names):
            raise ConfigError(
                f'grounding scenes are labelled for joints {scenes.joint_names}, '
                f'the model drives {c.joint_names}'
            )
        absent = [camera for camera in c.cameras if camera not in scenes.cameras]
        if absent:
            raise ConfigError(
                f'grounding scenes have no {", ".join(absent)} camera (they have '
                f'{", ".join(scenes.cameras)})'
            )
        _check_field_of_view(scenes, c.camera_shapes)
        self.device = model.device
        order = [scenes.joint_names.index(n) for n in c.joint_names]
        grasps = normalizer.normalize(ACTION, scenes.grasps[..., order])
        self.grasps = torch.zeros(*grasps.shape[:2], c.max_action_dim)
        self.grasps[..., : c.action_dim] = torch.from_numpy(grasps).float()
        views = [scenes.cameras.index(camera) for camera in c.cameras]
        height, width = c.image_size
        images = scenes.images[:, views]
        if scenes.image_size != (height, width):
            images = np.stack(
                [
                    [cv2.resize(v, (width, height), interpolation=cv2.INTER_AREA) for v in scene]
                    for scene in images
                ]
            )
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 1, 4, 2, 3)
        sentences, sentence_of = np.unique(scenes.instructions, return_inverse=True)
        self.sentences = sentences.tolist()
        self.sentence_of = torch.from_numpy(sentence_of.reshape(scenes.instructions.shape))
        self.language = None  # a frozen encoder's features, computed once
        if c.freeze_language:
            with torch.no_grad():
                self.language = model.encode_language(self.sentences)
        train, held = split_episodes(list(range(len(scenes.seeds))), val_fraction, seed)
        self.train_scenes, self.val_scenes = torch.tensor(train), torch.tensor(held)
        self.choices = scenes.instructions.shape[1]
        self.max_state_dim = c.max_state_dim

    def __len__(self) -> int:
        return len(self.train_scenes)

    def observation(
        self, model: VlaModel, scenes: torch.Tensor, choices: torch.Tensor
    ) -> Observation:
        sentence = self.sentence_of[scenes, choices]
        if self.language is None:
            language, mask = model.encode_language([self.sentences[i] for i in sentence])
        else:
            language, mask = (t[sentence] for t in self.language)
        return Observation(
            language=language.to(self.device),
            language_mask=mask.to(self.device),
            state=torch.zeros(len(scenes), self.max_state_dim, device=self.device),
            images=self.images[scenes].to(self.device, torch.float32) / 255.0,
        )

    def loss(self, model: VlaModel, size: int, generator: torch.Generator) -> torch.Tensor:
        """Mean squared error of the goal token's guess, `size` random training scenes.

        Each scene is asked for one of its objects at random.
        """
        picks = torch.randint(len(self.train_scenes), (size,), generator=generator)
        scenes = self.train_scenes[picks]
        choices = torch.randint(self.choices, (size,), generator=generator)
        guess = model.goal_guess(self.observation(model, scenes, choices))
        target = self.grasps[scenes, choices].to(guess.device)
        weight = model.action_dim_mask.to(guess.dtype)
        return ((guess - target) ** 2 * weight).sum() / (weight.sum() * size)

    @torch.no_grad()
    def nearest_fraction(self, model: VlaModel) -> float | None:
        """How often the guess is nearest the asked object's grasp, held out (None: none).

        Over held-out scenes and each object in them; nearest in normalised joints.
        """
        if not len(self.val_scenes):
            return None
        hits = 0
        for scenes in self.val_scenes.split(64):
            for choice in range(self.choices):
                choices = torch.full((len(scenes),), choice)
                guess = model.goal_guess(self.observation(model, scenes, choices))
                grasps = self.grasps[scenes].to(guess.device)  # (S, K, D)
                distance = (((guess[:, None] - grasps) * model.action_dim_mask) ** 2).sum(-1)
                hits += int((distance.argmin(1) == choice).sum())
        return hits / (len(self.val_scenes) * self.choices)
