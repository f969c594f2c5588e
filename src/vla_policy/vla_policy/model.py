"""The VLA: a prefix of image, language and state tokens, and a flow-matching action expert.

Layout in the spirit of pi0 / SmolVLA. The prefix transformer runs once per observation and
hands every layer's keys and values to the action expert, whose layer l attends to
[prefix keys/values of layer l, its own action tokens]. That is the block-causal mask: prefix
tokens never see actions (they are computed before actions exist), action tokens see the whole
prefix and each other. Padded language tokens are masked out of every attention.

Flow matching (pi0 convention): x_t = t * noise + (1 - t) * actions, the network predicts the
velocity noise - actions, and sampling integrates from t = 1 (noise) to t = 0 (actions) in K
Euler steps. Everything here works in normalised, zero-padded action and state space.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from vla_policy.config import PolicyConfig
from vla_policy.encoders import SmallCnn
from vla_policy.encoders import build_language_encoder
from vla_policy.encoders import build_vision_encoder

KeysValues = list[tuple[torch.Tensor, torch.Tensor]]
"""Per prefix layer: keys and values, each (B, heads, prefix_length, head_dim)."""


@dataclass
class Observation:
    """A batch of model inputs. `images` or precomputed `image_features` must be given."""

    language: torch.Tensor
    """(B, L, C) language encoder features (see `VlaModel.encode_language`)."""
    language_mask: torch.Tensor
    """(B, L) True where a token is real."""
    state: torch.Tensor
    """(B, max_state_dim) normalised joint positions, zero-padded."""
    images: torch.Tensor | None = None
    """(B, cameras, 3, H, W) RGB in [0, 1] at `config.image_size`."""
    image_features: torch.Tensor | None = None
    """(B, cameras, C, grid, grid) from `VlaModel.encode_images` (cached features in training)."""
    goal: torch.Tensor | None = None
    """(B, max_action_dim) with `goal_target`: the normalised grasp pose the action expert is
    told to reach. Training gives the recorded one; None (at run time) or NaN rows use the goal
    token's guess."""


@dataclass
class Prefix:
    """The prefix transformer's result for one batch of observations."""

    keys_values: KeysValues
    mask: torch.Tensor
    """(B, prefix_length) True where a token is real."""
    hidden: torch.Tensor
    """(B, prefix_length, width) the last layer's output (auxiliary heads read it)."""
    goal: torch.Tensor | None = None
    """(B, max_action_dim) the goal token's guess of the normalised action at the next grasp."""
    target: torch.Tensor | None = None
    """(B, max_action_dim + max_state_dim) with `goal_target`: the grasp pose to reach and the
    state, what the action expert is told besides the prefix."""

    def insulated(self) -> Prefix:
        """The same prefix with no gradient flowing back through its keys and values."""
        detached = [(k.detach(), v.detach()) for k, v in self.keys_values]
        return replace(self, keys_values=detached)


@dataclass
class Guidance:
    """Real-time chunking: steer the new chunk's start toward the previous chunk's plan.

    `previous` holds, for each index of the new chunk, the action the previous chunk planned for
    that same time (normalised, padded; rows past `available` are ignored). The first `delay`
    actions execute while the model runs, so they are pulled hardest; the pull then fades out
    exponentially up to `available` (Black et al., "Real-Time Execution of Action Chunking Flow
    Policies", 2025).
    """

    previous: torch.Tensor
    """(B, H, max_action_dim)."""
    delay: int
    available: int
    max_weight: float = 5.0

    def weights(self, horizon: int) -> torch.Tensor:
        """(H,) 1 on the first `delay` indices, decaying to 0 at `available`, 0 after."""
        index = torch.arange(horizon, dtype=torch.float32)
        span = max(self.available - self.delay, 1)
        c = ((self.available - index) / span).clamp(0.0, 1.0)
        decay = c * torch.expm1(c) / math.expm1(1.0)
        return torch.where(index < self.delay, torch.ones_like(index), decay)


def attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_mask: torch.Tensor
) -> torch.Tensor:
    """Multi-head attention of q over k/v; `key_mask` (B, Lk) is True for visible keys."""
    return F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])


class Block(nn.Module):
    """Pre-norm transformer block whose attention can take extra keys/values from outside."""

    def __init__(self, width: int, heads: int, head_dim: int, mlp_ratio: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, head_dim
        inner = heads * head_dim
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * inner)
        self.out = nn.Linear(inner, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, mlp_ratio * width), nn.GELU(), nn.Linear(mlp_ratio * width, width)
        )

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, self.head_dim).unbind(2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def finish(self, x: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        b, _, n, _ = attended.shape
        x = x + self.out(attended.transpose(1, 2).reshape(b, n, -1))
        return x + self.mlp(self.norm2(x))


def image_coordinates(cameras: int, rows: int, columns: int) -> torch.Tensor:
    """(cameras * rows * columns, C): each cell's camera (one-hot) and a code of its centre.

    Rows follow the order the cells are laid out in: camera, row, column. Sinusoids of periods
    down to four cells: the finer the grid, the finer the code.
    """
    ys, xs = ((torch.arange(n, dtype=torch.float32) + 0.5) / n * 2 - 1 for n in (rows, columns))
    y, x = torch.meshgrid(ys, xs, indexing='ij')
    frequencies = 2.0 ** torch.arange(max(1, math.ceil(math.log2(max(rows, columns)))))
    angles = torch.stack([x.flatten(), y.flatten()], -1)[:, :, None] * frequencies * (math.pi / 2)
    code = torch.cat([angles.sin().flatten(1), angles.cos().flatten(1)], dim=-1)
    camera = torch.eye(cameras).repeat_interleave(rows * columns, dim=0)
    return torch.cat([camera, code.repeat(cameras, 1)], dim=-1)


class GoalToken(nn.Module):
    """Grounding: the instruction asks the image tokens where the thing it names is.

    One attention read over every camera's tokens with queries made from the sentence. The keys
    are what each cell shows and where it is; the values are only where it is (a fixed
    coordinate code per camera and cell), so the token can tell nothing but where the attention
    went: "red" must find the cells that show red. With image features in the values it learned
    each training scene by heart instead (100 episodes: held-out grasp error rose as training
    error fell); reading out only the attention's centroid (a spatial soft-argmax) did not
    learn to find the cube at all in 1000 steps. `head` reads the arm's pose at its next grasp
    out of the token: the auxiliary target that teaches the binding (see `vla train`
    goal_weight). With `goal_stem` it looks at its own stride-4 conv features of the images
    instead of the shared image tokens.
    """

    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        width, self.heads, self.head_dim = config.width, config.heads, config.head_dim
        inner = self.heads * self.head_dim
        rows = columns = config.vision_grid
        self.stem = None
        if config.goal_stem:
            self.stem = SmallCnn((32, 64))  # two stride-2 blocks: stride 4
            self.stem_proj = nn.Linear(self.stem.feature_channels, width)
            rows, columns = (math.ceil(n / 4) for n in config.image_size)
        coordinates = image_coordinates(len(config.cameras), rows, columns)
        self.register_buffer('coordinates', coordinates, persistent=False)
        self.place = nn.Linear(self.coordinates.shape[1], width)
        self.norm = nn.LayerNorm(width)
        self.query = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, inner))
        self.key = nn.Linear(width, inner)
        self.value = nn.Linear(width, inner)
        self.out = nn.Linear(inner, width)
        self.head = nn.Sequential(
            nn.LayerNorm(width),
            nn.Linear(width, width),
            nn.GELU(),
            nn.Linear(width, config.max_action_dim),
        )

    def forward(
        self,
        sentence: torch.Tensor,
        image_tokens: torch.Tensor | None,
        images: torch.Tensor | None,
    ) -> torch.Tensor:
        """(B, width) goal token from the (B, width) sentence and what it looks at.

        That is the (B, N, width) image tokens, or with the stem the (B, cameras, 3, H, W) images.
        """
        if self.stem is not None:
            if images is None:
                raise ValueError('the goal stem needs the images, not only their features')
            pixels = images.flatten(0, 1).to(self.stem_proj.weight.dtype)
            cells = self.stem(pixels).flatten(2).transpose(1, 2)
            image_tokens = self.stem_proj(cells).reshape(len(sentence), -1, self.out.out_features)
        b, n, _ = image_tokens.shape
        place = self.place(self.coordinates.to(image_tokens.dtype))
        k = self.key(self.norm(image_tokens + place)).view(b, n, self.heads, self.head_dim)
        v = self.value(place).view(1, n, self.heads, self.head_dim).expand(b, -1, -1, -1)
        q = self.query(sentence).view(b, self.heads, 1, self.head_dim)
        read = F.scaled_dot_product_attention(q, k.transpose(1, 2), v.transpose(1, 2))
        return self.out(read.reshape(b, -1))


def time_embedding(t: torch.Tensor, width: int) -> torch.Tensor:
    """Sinusoids of the flow time t (B,) with periods from 4e-3 to 4 (as in pi0)."""
    fraction = torch.linspace(0.0, 1.0, width // 2, device=t.device, dtype=torch.float32)
    period = 4e-3 * (4.0 / 4e-3) ** fraction
    angle = t.float()[:, None] * (2 * math.pi / period)[None, :]
    return torch.cat([angle.sin(), angle.cos()], dim=-1)


# The action expert's parameters (names in the state dict): what turns noise into a chunk.
EXPERT_PARTS = (
    'target_in.',
    'action_in.',
    'action_time_mlp.',
    'action_position',
    'expert_layers.',
    'action_norm.',
    'action_out.',
)


class VlaModel(nn.Module):
    def __init__(self, config: PolicyConfig) -> None:
        super().__init__()
        self.config = c = config
        self.vision = build_vision_encoder(c)
        self.language_encoder = build_language_encoder(c)
        self.vision.requires_grad_(not c.freeze_vision)
        self.language_encoder.requires_grad_(not c.freeze_language)
        self.image_proj = nn.Linear(self.vision.feature_channels, c.width)
        self.language_proj = nn.Linear(self.language_encoder.feature_channels, c.width)
        self.state_proj = nn.Linear(c.max_state_dim, c.width)
        if c.film:  # zero-initialised: training starts from the unconditioned model
            self.film = nn.Linear(c.width, 2 * c.width)
            nn.init.zeros_(self.film.weight)
            nn.init.zeros_(self.film.bias)
        if c.goal_token:
            self.goal = GoalToken(c)
        if c.goal_target:  # zero-initialised: a fine-tune starts from the model without it
            self.target_in = nn.Linear(c.max_action_dim + c.max_state_dim, c.expert_width)
            nn.init.zeros_(self.target_in.weight)
            nn.init.zeros_(self.target_in.bias)
        self.prefix_position = nn.Parameter(torch.randn(c.prefix_length, c.width) * 0.02)
        self.prefix_layers = nn.ModuleList(
            Block(c.width, c.heads, c.head_dim, c.mlp_ratio) for _ in range(c.depth)
        )
        self.action_in = nn.Linear(c.max_action_dim, c.expert_width)
        self.action_time_mlp = nn.Sequential(
            nn.Linear(2 * c.expert_width, c.expert_width),
            nn.SiLU(),
            nn.Linear(c.expert_width, c.expert_width),
        )
        self.action_position = nn.Parameter(torch.randn(c.chunk_length, c.expert_width) * 0.02)
        self.expert_layers = nn.ModuleList(
            Block(c.expert_width, c.heads, c.head_dim, c.mlp_ratio) for _ in range(c.depth)
        )
        self.action_norm = nn.LayerNorm(c.expert_width)
        self.action_out = nn.Linear(c.expert_width, c.max_action_dim)
        dims = torch.zeros(c.max_action_dim, dtype=torch.bool)
        dims[: c.action_dim] = True
        self.register_buffer('action_dim_mask', dims, persistent=False)

    def with_fresh_expert(self, goal_target: bool) -> VlaModel:
        """This model's prefix and goal token under a newly initialised action expert.

        An expert trained without `goal_target` learns to ignore the target when it is added
        later; a new one, trained with the target from its first step, follows it.
        """
        fresh = VlaModel(replace(self.config, goal_target=goal_target)).to(self.device)
        kept = {k: v for k, v in self.state_dict().items() if not k.startswith(EXPERT_PARTS)}
        fresh.load_state_dict(kept, strict=False)  # all but the expert, which stays new
        return fresh

    def train(self, mode: bool = True) -> VlaModel:
        super().train(mode)
        # Frozen encoders keep their BatchNorm statistics and stay cacheable.
        if self.config.freeze_vision:
            self.vision.eval()
        if self.config.freeze_language:
            self.language_encoder.eval()
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.action_in.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.action_in.weight.device

    # ----- encoders (cacheable when frozen) -----

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, cameras, 3, H, W) in [0, 1] -> (B, cameras, C, grid, grid)."""
        b, n = images.shape[:2]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_vision):
            features = self.vision(images.flatten(0, 1).to(self.dtype))
        grid = self.config.vision_grid
        features = F.adaptive_avg_pool2d(features, (grid, grid))
        return features.view(b, n, *features.shape[1:])

    def encode_language(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instructions -> (B, L, C) features and (B, L) mask."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze_language):
            features, mask = self.language_encoder(texts)
        return features.to(self.dtype), mask

    # ----- prefix -----

    def language_tokens(self, obs: Observation) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, width) language tokens and (B, width) their mean over real tokens."""
        tokens = self.language_proj(obs.language.to(self.dtype))
        valid = obs.language_mask.to(tokens.dtype)[..., None]
        return tokens, (tokens * valid).sum(1) / valid.sum(1).clamp(min=1.0)

    def image_tokens(self, obs: Observation, sentence: torch.Tensor) -> torch.Tensor:
        """(B, cameras * grid * grid, width), FiLM-conditioned on the sentence if on."""
        features = obs.image_features
        if features is None:
            features = self.encode_images(obs.images)
        image_tokens = self.image_proj(features.flatten(3).transpose(2, 3).flatten(1, 2))
        if self.config.film:
            scale, shift = self.film(sentence)[:, None].chunk(2, dim=-1)
            image_tokens = image_tokens * (1.0 + scale) + shift
        return image_tokens

    def goal_guess(self, obs: Observation) -> torch.Tensor:
        """(B, max_action_dim) the goal token's grasp guess alone, without the prefix.

        With the goal stem it needs only the instruction and the pixels: the image encoder
        does not run.
        """
        _, sentence = self.language_tokens(obs)
        image_tokens = None if self.config.goal_stem else self.image_tokens(obs, sentence)
        return self.goal.head(self.goal(sentence, image_tokens, obs.images)).float()

    def prefix_tokens(
        self, obs: Observation
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Prefix tokens, their validity mask and the goal token's grasp guess (or None)."""
        language_tokens, sentence = self.language_tokens(obs)
        image_tokens = self.image_tokens(obs, sentence)
        state_token = self.state_proj(obs.state.to(self.dtype))[:, None]
        parts, goal = [image_tokens, language_tokens, state_token], None
        if self.config.goal_token:
            goal_token = self.goal(sentence, image_tokens, obs.images)
            parts.append(goal_token[:, None])
            goal = self.goal.head(goal_token).float()
        tokens = torch.cat(parts, dim=1) + self.prefix_position.to(image_tokens.dtype)
        b = tokens.shape[0]
        mask = torch.ones(b, tokens.shape[1], dtype=torch.bool, device=tokens.device)
        first_language = image_tokens.shape[1]  # only padded language tokens are invisible
        mask[:, first_language : first_language + language_tokens.shape[1]] = (
            obs.language_mask.bool()
        )
        return tokens, mask, goal

    def prefix_forward(self, obs: Observation) -> Prefix:
        """Run the prefix once: every layer's keys/values, the validity mask, the output."""
        x, mask, goal = self.prefix_tokens(obs)
        keys_values = []
        for layer in self.prefix_layers:
            q, k, v = layer.project(x)
            keys_values.append((k, v))
            x = layer.finish(x, attend(q, k, v, mask))
        target = None
        if self.config.goal_target:  # System 2 hands System 1 its target
            pose = goal.detach()
            if obs.goal is not None:  # rows without a recorded grasp (NaN) keep the guess
                pose = torch.where(obs.goal.isnan(), pose, obs.goal.float())
            target = torch.cat([pose * self.action_dim_mask, obs.state.float()], dim=-1)
        return Prefix(keys_values, mask, x, goal, target)

    # ----- action expert -----

    def velocity(self, x: torch.Tensor, t: torch.Tensor, prefix: Prefix) -> torch.Tensor:
        """Predicted flow velocity (B, H, max_action_dim) at noisy actions x and times t (B,)."""
        w = self.config.expert_width
        time = time_embedding(t, w).to(self.dtype)[:, None].expand(-1, x.shape[1], -1)
        x = (x * self.action_dim_mask).to(self.dtype)  # padded joints carry no information
        a = self.action_time_mlp(torch.cat([self.action_in(x), time], dim=-1))
        a = a + self.action_position.to(a.dtype)
        if prefix.target is not None:
            a = a + self.target_in(prefix.target.to(self.dtype))[:, None]
        own = torch.ones(a.shape[0], a.shape[1], dtype=torch.bool, device=a.device)
        mask = torch.cat([prefix.mask, own], dim=1)
        for layer, (pk, pv) in zip(self.expert_layers, prefix.keys_values, strict=True):
            q, k, v = layer.project(a)
            k, v = torch.cat([pk, k], dim=2), torch.cat([pv, v], dim=2)
            a = layer.finish(a, attend(q, k, v, mask))
        return self.action_out(self.action_norm(a)).float()

    # ----- training -----

    def flow_loss(
        self,
        obs: Observation,
        actions: torch.Tensor,
        action_mask: torch.Tensor,
        generator: torch.Generator | None = None,
        prefix: Prefix | None = None,
        insulate: bool = False,
    ) -> torch.Tensor:
        """Flow-matching loss on normalised, padded actions (B, H, D).

        `action_mask` (B, H) is False for steps past the episode end; padded action dimensions
        carry no loss. `prefix`: an already computed `prefix_forward(obs)`. `insulate`
        (knowledge insulation): this loss trains the action expert only, none of it flows
        back into the prefix, which keeps what it learned from its own objective.
        """
        b = actions.shape[0]
        noise = torch.randn(actions.shape, generator=generator, device=actions.device)
        t = sample_flow_time(b, generator, actions.device)
        x_t = t[:, None, None] * noise + (1 - t[:, None, None]) * actions
        prefix = prefix or self.prefix_forward(obs)
        if insulate:
            prefix = prefix.insulated()
        error = (self.velocity(x_t, t, prefix) - (noise - actions)) ** 2
        weight = action_mask[:, :, None] & self.action_dim_mask[None, None, :]
        return (error * weight).sum() / weight.sum().clamp(min=1)

    # ----- sampling -----

    @torch.no_grad()
    def sample(
        self,
        obs: Observation,
        noise: torch.Tensor,
        steps: int | None = None,
        cache_prefix: bool = True,
        guidance: Guidance | None = None,
    ) -> torch.Tensor:
        """Integrate the flow from `noise` (B, H, D) to normalised actions in K Euler steps.

        `cache_prefix=False` recomputes the prefix at every step: the same result, slower; it
        exists to check and to measure the cache.
        """
        prefix = self.prefix_forward(obs)
        if cache_prefix:
            return self.integrate(noise, prefix, steps, guidance)
        x, steps = noise.float(), steps or self.config.flow_steps
        for i in range(steps):
            if i:
                prefix = self.prefix_forward(obs)
            x = self.integrate(x, prefix, steps, guidance, first=i, count=1)
        return x

    def integrate(
        self,
        noise: torch.Tensor,
        prefix: Prefix,
        steps: int | None = None,
        guidance: Guidance | None = None,
        first: int = 0,
        count: int | None = None,
    ) -> torch.Tensor:
        """Euler steps `first` .. `first + count` of K from t = 1 down to t = 0."""
        steps = steps or self.config.flow_steps
        x = noise.float()
        for i in range(first, first + (steps if count is None else count)):
            t = torch.full((x.shape[0],), 1.0 - i / steps, device=x.device)
            if guidance is None:
                v = self.velocity(x, t, prefix)
            else:
                v = self.guided_velocity(x, t, prefix, guidance)
            x = x - v / steps
        return x

    def guided_velocity(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        prefix: Prefix,
        guidance: Guidance,
    ) -> torch.Tensor:
        """Velocity plus the real-time-chunking pull.

        Pseudo-inverse guidance: a vector-Jacobian product through the predicted clean actions.
        """
        weights = guidance.weights(x.shape[1]).to(x.device)[None, :, None]
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            v = self.velocity(x, t, prefix)
            clean = x - t[:, None, None] * v  # the actions this velocity points at
            error = (guidance.previous.to(x.device) - clean) * weights * self.action_dim_mask
            (pull,) = torch.autograd.grad(clean, x, grad_outputs=error.detach())
        # In the paper's time (tau = 1 - t): weight min(beta, (1 - tau) / (tau * r^2)).
        tau = (1.0 - t).clamp(min=1e-6)
        r2 = (1 - tau) ** 2 / (tau**2 + (1 - tau) ** 2)
        scale = torch.clamp((1 - tau) / (tau * r2), max=guidance.max_weight)
        return v.detach() - scale[:, None, None] * pull


def sample_flow_time(
    batch: int, generator: torch.Generator | None, device: torch.device
) -> torch.Tensor:
    """T ~ 0.001 + 0.999 * Beta(1.5, 1): more weight on noisy times, as in pi0."""
    u = torch.rand(batch, generator=generator, device=device)
    return 0.001 + 0.999 * u ** (1 / 1.5)
