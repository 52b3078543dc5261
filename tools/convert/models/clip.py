"""transformers CLIPTextModel (text tower only) with transformers' key names.

forward(input_ids [B, S] int, clip_skip: int = 0) -> [B, S, D]:
  clip_skip == 0: last_hidden_state (final_layer_norm of the last layer's output);
  clip_skip == k: final_layer_norm(hidden_states[-(k + 1)]) as diffusers' encode_prompt does.
No attention mask (TextToVideoSDPipeline passes none); causal mask always.
"""

import torch
import torch.nn as nn

from .. import ConvertError
from .common import activation, attention_core


class CLIPTextEmbeddings(nn.Module):
    def __init__(self, vocab, hidden, max_pos, dd=None):
        super().__init__()
        dd = dd or {}
        self.token_embedding = nn.Embedding(vocab, hidden, **dd)
        self.position_embedding = nn.Embedding(max_pos, hidden, **dd)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        seq = input_ids.size(1)
        pos = torch.arange(seq, device=input_ids.device)
        return self.token_embedding(input_ids) + self.position_embedding(pos)[None]


class CLIPAttention(nn.Module):
    def __init__(self, hidden, heads, attn_kind, dd=None):
        super().__init__()
        dd = dd or {}
        if hidden % heads:
            raise ConvertError(f"text_encoder config: hidden_size {hidden} not divisible by {heads} heads")
        self.heads = heads
        self.k_proj = nn.Linear(hidden, hidden, **dd)
        self.v_proj = nn.Linear(hidden, hidden, **dd)
        self.q_proj = nn.Linear(hidden, hidden, **dd)
        self.out_proj = nn.Linear(hidden, hidden, **dd)
        self.core = attention_core(attn_kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.size(0)
        n = x.size(1)
        c = x.size(2)
        d = c // self.heads
        q = self.q_proj(x).reshape(b, n, self.heads, d).transpose(1, 2)
        k = self.k_proj(x).reshape(b, n, self.heads, d).transpose(1, 2)
        v = self.v_proj(x).reshape(b, n, self.heads, d).transpose(1, 2)
        out = self.core(q, k, v, True, False)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, c))


class CLIPMLP(nn.Module):
    def __init__(self, hidden, intermediate, act, dd=None):
        super().__init__()
        dd = dd or {}
        self.activation_fn = activation(act)
        self.fc1 = nn.Linear(hidden, intermediate, **dd)
        self.fc2 = nn.Linear(intermediate, hidden, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.activation_fn(self.fc1(x)))


class CLIPEncoderLayer(nn.Module):
    def __init__(self, hidden, heads, intermediate, act, eps, attn_kind, dd=None):
        super().__init__()
        dd = dd or {}
        self.self_attn = CLIPAttention(hidden, heads, attn_kind, dd=dd)
        self.layer_norm1 = nn.LayerNorm(hidden, eps=eps, **dd)
        self.mlp = CLIPMLP(hidden, intermediate, act, dd=dd)
        self.layer_norm2 = nn.LayerNorm(hidden, eps=eps, **dd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        x = x + self.mlp(self.layer_norm2(x))
        return x


class CLIPEncoder(nn.Module):
    def __init__(self, n_layers, hidden, heads, intermediate, act, eps, attn_kind, dd=None):
        super().__init__()
        self.layers = nn.ModuleList([CLIPEncoderLayer(hidden, heads, intermediate, act, eps, attn_kind, dd=dd)
                                     for _ in range(n_layers)])
        self.num_layers = n_layers

    def forward(self, x: torch.Tensor, stop_after: int) -> torch.Tensor:
        """Run the first ``stop_after`` layers."""
        i = 0
        for layer in self.layers:
            if i < stop_after:
                x = layer(x)
            i += 1
        return x


class CLIPTextTransformer(nn.Module):
    def __init__(self, cfg, attn_kind, dd=None):
        super().__init__()
        hidden = int(cfg.get("hidden_size", 512))
        eps = float(cfg.get("layer_norm_eps", 1e-5))
        self.max_positions = int(cfg.get("max_position_embeddings", 77))
        self.embeddings = CLIPTextEmbeddings(int(cfg.get("vocab_size", 49408)), hidden, self.max_positions, dd=dd)
        self.encoder = CLIPEncoder(int(cfg.get("num_hidden_layers", 12)), hidden,
                                   int(cfg.get("num_attention_heads", 8)), int(cfg.get("intermediate_size", 2048)),
                                   cfg.get("hidden_act", "quick_gelu"), eps, attn_kind, dd=dd)
        self.final_layer_norm = nn.LayerNorm(hidden, eps=eps, **(dd or {}))

    def forward(self, input_ids: torch.Tensor, clip_skip: int) -> torch.Tensor:
        if input_ids.dim() != 2:
            raise RuntimeError("text_encoder: input_ids must be [batch, sequence]")
        if input_ids.size(1) > self.max_positions:
            raise RuntimeError("text_encoder: sequence longer than max_position_embeddings")
        n_layers = self.encoder.num_layers
        if clip_skip < 0 or clip_skip > n_layers:
            raise RuntimeError("text_encoder: clip_skip must be between 0 and the number of layers")
        x = self.embeddings(input_ids.to(torch.long))
        x = self.encoder(x, n_layers - clip_skip)
        return self.final_layer_norm(x)


class CLIPTextModel(nn.Module):
    """forward(input_ids: int [B, S], clip_skip: int = 0) -> [B, S, hidden] in the parameter dtype."""

    def __init__(self, config, attn_kind="plain", dd=None):
        super().__init__()
        self.text_model = CLIPTextTransformer(dict(config), attn_kind, dd=dd)

    def forward(self, input_ids: torch.Tensor, clip_skip: int = 0) -> torch.Tensor:
        return self.text_model(input_ids, clip_skip)
