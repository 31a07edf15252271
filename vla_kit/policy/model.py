"""The reference Vision-Language-Action network.

One transformer attends jointly over four kinds of token, in this order::

    [ camera 0 patches | camera 1 patches | ... | instruction words | proprio | T action queries ]

* **Vision**: a small two-conv stem (``stem_channels``; stride 2). The instruction modulates the
  *first* conv's features (FiLM: per-channel scale and shift from the mean word embedding, as in
  RT-1) before the nonlinearity, and the second conv mixes the gated channels: so one output
  channel can fire on "the red cube" or "the blue cube" depending on the words (FiLM after the last
  conv could only rescale a channel, which cannot switch it between four colours). The output is
  cut into ``patch_size`` squares by a strided ``Conv2d``, plus a learned position embedding per
  patch and a learned embedding per camera. A spatial softmax over each stem output channel
  gives its expected image coordinates (Levine et al.'s keypoints), projected into one more token
  per camera: "where is the thing the instruction names" arrives as numbers, which is what a
  small model learns from a few hundred demonstrations. With a goal head (``goal_dim``), output
  channel 0 is the *goal channel*: training supervises its softmax map to peak on the named cube
  (see :meth:`VLAModel.forward_with_goal`). ``stem_channels=0`` patchifies raw pixels.
* **Language**: one learned embedding per word id plus a learned position; padding positions are
  masked out of attention (the ``token_mask`` input), so padding never changes the answer.
* **Proprioception**: a two-layer MLP turns the (normalised) proprio vector into one token.
* **Action chunk**: ``T`` learned query tokens; after the pre-norm ``nn.TransformerEncoder`` and a
  final LayerNorm, a linear layer maps each query's output to ``action_dim`` numbers. The output is
  ``[B, T, action_dim]`` in *normalised* action units; de-normalising is
  :mod:`vla_kit.policy.processing`'s job. Each layer's feed-forward width is
  ``config.layer_feedforward_dims`` (equal in every layer unless structured pruning set them).

Where normalisation happens: **pixels are normalised inside the network** (uint8 -> [0, 1] ->
per-channel mean/std from the config), so the exported graph takes raw ``uint8`` camera frames,
every backend applies the same constants, and the host copies a quarter of the bytes a float input
would need. Training code may instead pass float images already scaled to [0, 1] (after
augmentation); the mean/std step is the same. Proprio and action statistics come from data, so
they live in the artifact's ``normalization`` section and are applied by the shared numpy
processing, outside the graph.

The forward pass has no data-dependent Python control flow: the only branches look at dtypes and
static shapes, so tracing and ONNX export capture one graph with a free batch dimension.
"""

from __future__ import annotations

import torch
from torch import nn

from vla_kit.errors import InputError
from vla_kit.policy.config import ModelConfig
from vla_kit.policy.tokenizer import PAD_ID

__all__ = ["VLAModel", "build_model", "count_parameters"]

_INIT_STD = 0.02  # std of the truncated-normal init of embeddings and linear weights (ViT/BERT habit)


class VLAModel(nn.Module):
    """The reference VLA. Build it with :func:`build_model` to get seeded, reproducible weights.

    Args:
        config: every shape and constant; kept as ``self.config``.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        c = self.config = config
        # Not persistent: the config is the single source of these constants, so a weights file
        # can never disagree with policy.json about them.
        self.register_buffer("image_mean", torch.tensor(c.image_mean).view(1, c.channels, 1, 1), persistent=False)
        self.register_buffer("image_std", torch.tensor(c.image_std).view(1, c.channels, 1, 1), persistent=False)
        if c.stem_channels:
            s = c.stem_channels
            self.stem = nn.Sequential(
                nn.Conv2d(c.channels, s, kernel_size=5, stride=2, padding=2), nn.GELU(), nn.Conv2d(s, s, kernel_size=3, padding=1)
            )
            self.film = nn.Linear(c.d_model, 2 * s)
            self.keypoint_proj = nn.Linear(2 * s, c.d_model)
            if c.goal_dim:
                self.goal_head = nn.Linear(2 * s * c.num_cameras, c.goal_dim)
            self.patch_embed = nn.Conv2d(s, c.d_model, kernel_size=c.patch_size // 2, stride=c.patch_size // 2)
            h, w = c.image_height // 2, c.image_width // 2
            ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
            self.register_buffer("grid_xy", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1), persistent=False)
        else:
            self.patch_embed = nn.Conv2d(c.channels, c.d_model, kernel_size=c.patch_size, stride=c.patch_size)
        self.patch_pos = nn.Parameter(torch.zeros(1, c.patches_per_image, c.d_model))
        self.camera_embed = nn.Parameter(torch.zeros(1, c.num_cameras, 1, c.d_model))
        self.word_embed = nn.Embedding(c.vocab_size, c.d_model, padding_idx=PAD_ID)
        self.word_pos = nn.Parameter(torch.zeros(1, c.max_tokens, c.d_model))
        self.proprio_mlp = nn.Sequential(
            nn.Linear(c.proprio_dim, c.d_model), nn.GELU(), nn.Linear(c.d_model, c.d_model)
        )
        self.action_queries = nn.Parameter(torch.zeros(1, c.chunk_length, c.d_model))
        layer = self._encoder_layer(c.feedforward_dim)
        # Nested tensors would make the trunk's work depend on the mask's values; keep it dense.
        self.trunk = nn.TransformerEncoder(layer, c.num_layers, norm=nn.LayerNorm(c.d_model), enable_nested_tensor=False)
        if c.feedforward_dims is not None:
            # A width per layer (structured pruning). Swapping the list in place keeps the module
            # names, so the state-dict keys stay `trunk.layers.{i}.linear1.weight`; the forked RNG
            # keeps the construction from shifting the seeded stream _init_weights draws from.
            with torch.random.fork_rng(devices=[]):
                self.trunk.layers = nn.ModuleList(self._encoder_layer(width) for width in c.feedforward_dims)
        self.action_head = nn.Linear(c.d_model, c.action_dim)
        self._init_weights()

    def _encoder_layer(self, feedforward_dim: int) -> nn.TransformerEncoderLayer:
        c = self.config
        return nn.TransformerEncoderLayer(
            c.d_model, c.num_heads, feedforward_dim, c.dropout, activation="gelu", batch_first=True, norm_first=True
        )

    def _init_weights(self) -> None:
        # TransformerEncoder deep-copies one layer, so every layer would start identical; draw
        # each weight afresh instead, in module order so a seed fixes them all.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=_INIT_STD)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.MultiheadAttention):
                nn.init.trunc_normal_(module.in_proj_weight, std=_INIT_STD)
                nn.init.zeros_(module.in_proj_bias)
            elif isinstance(module, nn.Embedding):
                nn.init.trunc_normal_(module.weight, std=_INIT_STD)
                with torch.no_grad():
                    module.weight[PAD_ID].zero_()
        for param in (self.patch_pos, self.camera_embed, self.word_pos, self.action_queries):
            nn.init.trunc_normal_(param, std=_INIT_STD)

    def normalize_images(self, images: torch.Tensor) -> torch.Tensor:
        """Camera frames ``[B, N, H, W, C]`` -> normalised ``float32 [B*N, C, H, W]``.

        ``uint8`` input is scaled by 1/255; floating input is taken to be in [0, 1] already.
        """
        c = self.config
        x = images.to(torch.float32)
        if images.dtype == torch.uint8:
            x = x * (1.0 / 255.0)
        x = x.reshape(-1, c.image_height, c.image_width, c.channels).permute(0, 3, 1, 2)
        return (x - self.image_mean) / self.image_std

    def forward(
        self, images: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor, proprio: torch.Tensor
    ) -> torch.Tensor:
        """Predict a normalised action chunk.

        Args:
            images: ``[B, num_cameras, H, W, C]``, ``uint8`` pixels or floats in [0, 1].
            token_ids: ``int64 [B, L]`` word ids, ``L <= max_tokens``.
            token_mask: ``bool [B, L]``, True where a real token sits (False = padding).
            proprio: ``float32 [B, proprio_dim]``, normalised with the artifact's proprio stats.

        Returns:
            ``float32 [B, chunk_length, action_dim]`` in normalised action units.

        Raises:
            InputError: a static dimension does not match the config.
        """
        return self._forward(images, token_ids, token_mask, proprio)[0]

    def forward_with_goal(
        self, images: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor, proprio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass: the action chunk and the auxiliary head's ``[B, goal_dim]`` prediction.

        Raises:
            InputError: the config has no goal head (``goal_dim`` is 0), or a shape is wrong.
        """
        if not self.config.goal_dim:
            raise InputError("model", "this config has no goal head (goal_dim=0)")
        actions, keypoints = self._forward(images, token_ids, token_mask, proprio)
        return actions, self.goal_head(keypoints.reshape(images.shape[0], -1))

    def forward_with_goal_map(
        self, images: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor, proprio: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass with the goal channel's map: actions, goal ``[B, goal_dim]`` and the goal
        channel's log-softmax over the stem grid, ``[B, N, H/2 * W/2]`` (row-major, like ``grid_xy``).

        Raises:
            InputError: the config has no goal head (``goal_dim`` is 0), or a shape is wrong.
        """
        if not self.config.goal_dim:
            raise InputError("model", "this config has no goal head (goal_dim=0)")
        actions, keypoints, logits = self._forward(images, token_ids, token_mask, proprio, with_map=True)
        goal = self.goal_head(keypoints.reshape(images.shape[0], -1))
        return actions, goal, torch.log_softmax(logits, dim=-1).reshape(images.shape[0], self.config.num_cameras, -1)

    def _forward(
        self, images: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor, proprio: torch.Tensor,
        with_map: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        c = self.config
        if not (torch.jit.is_tracing() or torch.compiler.is_compiling()):
            # Tracers see shapes as tensors and would warn; the graph they record is fixed anyway.
            self._check_shapes(images, token_ids, token_mask, proprio)
        batch = images.shape[0]
        n_words = token_ids.shape[1]
        word_vectors = self.word_embed(token_ids)
        pixels = self.normalize_images(images)
        keypoints = goal_logits = None
        if c.stem_channels:
            vision, keypoints, goal_logits = self._stem_tokens(pixels, word_vectors, token_mask, batch)
        else:
            patches = self.patch_embed(pixels).flatten(2).transpose(1, 2) + self.patch_pos
            vision = patches.reshape(batch, c.num_cameras, c.patches_per_image, c.d_model)
        n_vision = c.num_cameras * c.vision_tokens_per_image
        vision = (vision + self.camera_embed).reshape(batch, n_vision, c.d_model)
        words = word_vectors + self.word_pos[:, :n_words]
        state = self.proprio_mlp(proprio.to(torch.float32)).unsqueeze(1)
        queries = self.action_queries.expand(batch, -1, -1)
        tokens = torch.cat([vision, words, state, queries], dim=1)
        # True = ignore. Only instruction padding is ever ignored.
        ignore_words = torch.logical_not(token_mask.to(torch.bool))
        ignore_vision = torch.zeros(batch, n_vision, dtype=torch.bool, device=tokens.device)
        ignore_rest = torch.zeros(batch, 1 + c.chunk_length, dtype=torch.bool, device=tokens.device)
        ignore = torch.cat([ignore_vision, ignore_words, ignore_rest], dim=1)
        hidden = self.trunk(tokens, src_key_padding_mask=ignore)
        actions = self.action_head(hidden[:, -c.chunk_length:])
        return (actions, keypoints, goal_logits) if with_map else (actions, keypoints)

    def _stem_tokens(
        self, pixels: torch.Tensor, word_vectors: torch.Tensor, token_mask: torch.Tensor, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Conv -> FiLM by the instruction -> conv -> patch tokens + one keypoint token, ``[B, N, P+1, D]``,
        the keypoints themselves, ``[B*N, 2S]``, and channel 0's softmax logits, ``[B*N, H/2 * W/2]``."""
        c = self.config
        m = token_mask.to(word_vectors.dtype).unsqueeze(-1)
        sentence = (word_vectors * m).sum(1) / m.sum(1).clamp_min(1.0)  # mean of the real words
        gamma, beta = self.film(sentence).repeat_interleave(c.num_cameras, dim=0).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        gelu = torch.nn.functional.gelu
        # stem[1] is the GELU between the convs; FiLM acts on its input, so the convs run one by one.
        gated = gelu(self.stem[0](pixels) * (1 + gamma) + beta)  # [B*N, S, H/2, W/2]
        feats = gelu(self.stem[2](gated))  # [B*N, S, H/2, W/2]
        patches = self.patch_embed(feats).flatten(2).transpose(1, 2) + self.patch_pos
        logits = feats.flatten(2)
        attention = torch.softmax(logits, dim=-1)  # where each channel fires
        keypoints = (attention @ self.grid_xy).flatten(1)  # [B*N, 2S] expected (x, y) per channel
        tokens = torch.cat([patches, self.keypoint_proj(keypoints).unsqueeze(1)], dim=1)
        return tokens.reshape(batch, c.num_cameras, c.vision_tokens_per_image, c.d_model), keypoints, logits[:, 0]

    def _check_shapes(
        self, images: torch.Tensor, token_ids: torch.Tensor, token_mask: torch.Tensor, proprio: torch.Tensor
    ) -> None:
        # Static dimensions only, so tracing sees no data-dependent branch.
        c = self.config
        expected = (c.num_cameras, c.image_height, c.image_width, c.channels)
        if images.dim() != 5 or tuple(images.shape[1:]) != expected:
            raise InputError("images", f"expected shape [B, {', '.join(map(str, expected))}], got {list(images.shape)}")
        if token_ids.dim() != 2 or token_ids.shape[1] > c.max_tokens:
            raise InputError("token_ids", f"expected shape [B, L <= {c.max_tokens}], got {list(token_ids.shape)}")
        if token_mask.shape != token_ids.shape:
            raise InputError("token_mask", f"expected the shape of token_ids {list(token_ids.shape)}, got {list(token_mask.shape)}")
        if proprio.dim() != 2 or proprio.shape[1] != c.proprio_dim:
            raise InputError("proprio", f"expected shape [B, {c.proprio_dim}], got {list(proprio.shape)}")


def build_model(config: ModelConfig, *, seed: int) -> VLAModel:
    """A freshly initialised :class:`VLAModel`; the same config and seed give the same weights.

    The global torch RNG is left as it was, so building a model does not shift other random
    streams (data shuffling, dropout) of the caller.

    Args:
        config: the architecture.
        seed: seeds every initial weight.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return VLAModel(config)


def count_parameters(config: ModelConfig) -> int:
    """Exact parameter count of a :class:`VLAModel`, without allocating its weights.

    Builds the module on the ``meta`` device, so even ``base`` is counted in milliseconds.
    """
    with torch.device("meta"):
        model = VLAModel(config)
    return sum(p.numel() for p in model.parameters())
