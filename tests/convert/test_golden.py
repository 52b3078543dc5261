"""Exported modules vs the real diffusers/transformers outputs (golden.safetensors)."""

import hashlib
import json
import os
import unittest

import torch

from ._util import TOL, PIPELINE, converted, golden, max_abs, run_unet_case

UNET_CASES = ("b1_f1_8x8", "b2_f3_8x12_per_batch_t", "b1_f4_4x4_t1")


def load(folder, name):
    return torch.jit.load(os.path.join(folder, name + ".pt"), map_location="cpu")


def chunked_modules(module):
    return [(n, m) for n, m in module.named_modules() if hasattr(m, "chunk_size")]


class GoldenFloat32(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = converted("float32")
        cls.g = golden()
        cls.te = load(cls.folder, "text_encoder")
        cls.unet = load(cls.folder, "unet")
        cls.enc = load(cls.folder, "vae_encoder")
        cls.dec = load(cls.folder, "vae_decoder")

    def test_text_encoder_last_hidden_state(self):
        with torch.no_grad():
            out = self.te(self.g["text_encoder/input_ids"])
        self.assertEqual(out.shape, self.g["text_encoder/last_hidden_state"].shape)
        err = max_abs(out, self.g["text_encoder/last_hidden_state"])
        self.assertLessEqual(err, TOL, f"last_hidden_state max abs err {err}")

    def test_text_encoder_clip_skip_1(self):
        with torch.no_grad():
            out = self.te(self.g["text_encoder/input_ids"], 1)
        err = max_abs(out, self.g["text_encoder/clip_skip_1"])
        self.assertLessEqual(err, TOL, f"clip_skip_1 max abs err {err}")

    def test_text_encoder_int32_ids_and_default_clip_skip(self):
        ids = self.g["text_encoder/input_ids"]
        with torch.no_grad():
            a = self.te(ids.to(torch.int32))
            b = self.te(ids, 0)
        self.assertEqual(max_abs(a, b), 0.0)

    def test_text_encoder_rejects_bad_clip_skip(self):
        with self.assertRaises(Exception):
            self.te(self.g["text_encoder/input_ids"], 3)  # only 2 layers

    def unet_case(self, unet, case):
        out, want = run_unet_case(unet, case)
        self.assertEqual(out.shape, want.shape)
        return max_abs(out, want)

    def test_unet_goldens(self):
        for case in UNET_CASES:
            with self.subTest(case=case):
                err = self.unet_case(self.unet, case)
                self.assertLessEqual(err, TOL, f"{case}: max abs err {err}")

    def test_unet_float_timestep(self):
        g = self.g
        case = "b2_f3_8x12_per_batch_t"
        with torch.no_grad():
            a = self.unet(g[f"unet/{case}/sample"], g[f"unet/{case}/timestep"], g[f"unet/{case}/encoder_hidden_states"])
            b = self.unet(g[f"unet/{case}/sample"], g[f"unet/{case}/timestep"].to(torch.float32),
                          g[f"unet/{case}/encoder_hidden_states"])
        self.assertEqual(max_abs(a, b), 0.0)

    def test_unet_forward_chunking(self):
        unet = load(self.folder, "unet")  # fresh copy: attributes are changed in place
        mods = chunked_modules(unet)
        # tiny UNet: transformer_in 1 + down 2 + mid 2 + up 4 BasicTransformerBlocks
        self.assertEqual(len(mods), 9, [n for n, _ in mods])
        for _, m in mods:
            self.assertEqual((m.chunk_size, m.chunk_dim), (0, 1))
        for size in (1, 2):
            for dim in (0, 1):
                for _, m in mods:
                    m._c.setattr("chunk_size", size)  # what C++ Module::setattr does
                    m._c.setattr("chunk_dim", dim)
                for _, m in mods:
                    self.assertEqual((m.chunk_size, m.chunk_dim), (size, dim))
                for case in UNET_CASES:
                    with self.subTest(size=size, dim=dim, case=case):
                        err = self.unet_case(unet, case)
                        self.assertLessEqual(err, TOL, f"chunk {size}/{dim} {case}: max abs err {err}")

    def test_chunk_setting_changes_the_path(self):
        """A nonsense chunk_dim fails: proof the scripted forward reads the attribute at run time."""
        unet = load(self.folder, "unet")
        for _, m in chunked_modules(unet):
            m._c.setattr("chunk_size", 1)
            m._c.setattr("chunk_dim", 7)
        with self.assertRaises(Exception):
            self.unet_case(unet, "b1_f1_8x8")

    def test_vae_encode(self):
        with torch.no_grad():
            mean, std = self.enc(self.g["vae/encode_input"])
        self.assertLessEqual(max_abs(mean, self.g["vae/latent_mean"]), TOL)
        self.assertLessEqual(max_abs(std, self.g["vae/latent_std"]), TOL)
        sample = mean + std * self.g["vae/latent_sample_noise"]
        self.assertLessEqual(max_abs(sample, self.g["vae/latent_sample"]), TOL)

    def test_vae_decode(self):
        with torch.no_grad():
            out = self.dec(self.g["vae/decode_input"])
        self.assertEqual(out.shape, self.g["vae/decode_output"].shape)
        self.assertLessEqual(max_abs(out, self.g["vae/decode_output"]), TOL)

    def test_odd_sizes_and_frame_counts(self):
        """Latent sizes not divisible by the upsampling factor and any frame count work."""
        torch.manual_seed(0)
        ehs = torch.randn(1, 77, 32)
        for f, h, w in ((1, 5, 7), (5, 3, 3), (2, 9, 6)):
            with self.subTest(f=f, h=h, w=w), torch.no_grad():
                x = torch.randn(1, 4, f, h, w)
                out = self.unet(x, torch.tensor(500), ehs)
                self.assertEqual(tuple(out.shape), (1, 4, f, h, w))
                self.assertTrue(torch.isfinite(out).all())

    def test_cast_after_load(self):
        unet = load(self.folder, "unet").to(torch.bfloat16)
        dec = load(self.folder, "vae_decoder").to(torch.bfloat16)
        te = load(self.folder, "text_encoder").to(torch.bfloat16)
        g = self.g
        out, want = run_unet_case(unet, "b1_f4_4x4_t1")
        self.assertEqual(out.dtype, torch.float32)  # returned in the sample's dtype
        self.assertLess(max_abs(out, want), 0.15)
        with torch.no_grad():
            img = dec(g["vae/decode_input"])
            self.assertLess(max_abs(img, g["vae/decode_output"]), 0.1)
            emb = te(g["text_encoder/input_ids"])
            self.assertEqual(emb.dtype, torch.bfloat16)
            self.assertLess(max_abs(emb, g["text_encoder/last_hidden_state"]), 0.15)

    def test_manifest_and_folder(self):
        with open(os.path.join(self.folder, "manifest.json")) as f:
            m = json.load(f)
        self.assertEqual(m["format"], "torchvid-model")
        self.assertEqual(m["formatVersion"], 1)
        self.assertEqual(m["dtype"], "float32")
        self.assertEqual(m["torchVersion"], torch.__version__)
        self.assertIn(m["attention"], ("sdpa", "plain"))
        self.assertEqual(m["source"]["path"], PIPELINE)
        self.assertIsNone(m["source"]["variant"])
        self.assertEqual(m["source"]["modelIndex"]["_class_name"], "TextToVideoSDPipeline")
        self.assertTrue(m["createdBy"].startswith("torchvid convert "))
        params = {"text_encoder": 1597162, "unet": 339588}
        for name in ("text_encoder", "unet", "vae_encoder", "vae_decoder"):
            c = m["components"][name]
            path = os.path.join(self.folder, c["file"])
            self.assertEqual(c["file"], name + ".pt")
            self.assertEqual(os.path.getsize(path), c["bytes"])
            with open(path, "rb") as f:
                self.assertEqual(hashlib.sha256(f.read()).hexdigest(), c["sha256"])
            if name in params:
                self.assertEqual(c["parameters"], params[name])
        self.assertEqual(m["components"]["vae_encoder"]["parameters"] + m["components"]["vae_decoder"]["parameters"],
                         167959)
        for rel in ("tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json",
                    "tokenizer/special_tokens_map.json", "scheduler/scheduler_config.json", "configs/unet.json",
                    "configs/vae.json", "configs/text_encoder.json", "configs/model_index.json"):
            self.assertTrue(os.path.isfile(os.path.join(self.folder, rel)), rel)
        with open(os.path.join(self.folder, "scheduler/scheduler_config.json"), "rb") as a, \
                open(os.path.join(PIPELINE, "scheduler/scheduler_config.json"), "rb") as b:
            self.assertEqual(a.read(), b.read())
        leftovers = [n for n in os.listdir(os.path.dirname(self.folder)) if n != "model"]
        self.assertEqual(leftovers, [])

    def test_parameter_names_match_checkpoint(self):
        from convert.safetensors_io import load_file
        sd = load_file(os.path.join(PIPELINE, "unet", "diffusion_pytorch_model.safetensors"))
        names = dict(self.unet.named_parameters())
        self.assertEqual(set(names), set(sd))
        for k, v in sd.items():
            self.assertTrue(torch.equal(names[k], v), k)


class PlainAttentionExport(unittest.TestCase):
    def test_plain_matches(self):
        folder = converted("float32", "plain")
        with open(os.path.join(folder, "manifest.json")) as f:
            self.assertEqual(json.load(f)["attention"], "plain")
        out, want = run_unet_case(load(folder, "unet"), "b2_f3_8x12_per_batch_t")
        self.assertLessEqual(max_abs(out, want), TOL)


class Bfloat16Export(unittest.TestCase):
    def test_bfloat16_loads_and_runs(self):
        folder = converted("bfloat16")
        with open(os.path.join(folder, "manifest.json")) as f:
            self.assertEqual(json.load(f)["dtype"], "bfloat16")
        g = golden()
        te = load(folder, "text_encoder")
        unet = load(folder, "unet")
        enc = load(folder, "vae_encoder")
        dec = load(folder, "vae_decoder")
        for mod in (te, unet, enc, dec):
            self.assertTrue(all(p.dtype == torch.bfloat16 for p in mod.parameters()))
        with torch.no_grad():
            emb = te(g["text_encoder/input_ids"])
            self.assertEqual(emb.dtype, torch.bfloat16)
            self.assertLess(max_abs(emb, g["text_encoder/last_hidden_state"]), 0.15)
            for case in UNET_CASES:
                out, want = run_unet_case(unet, case)
                self.assertTrue(torch.isfinite(out).all())
                self.assertLess(max_abs(out, want), 0.15, case)
            mean, std = enc(g["vae/encode_input"])
            self.assertLess(max_abs(mean, g["vae/latent_mean"]), 0.1)
            img = dec(g["vae/decode_input"].to(torch.bfloat16))
            self.assertEqual(img.dtype, torch.bfloat16)
            self.assertLess(max_abs(img, g["vae/decode_output"]), 0.1)


if __name__ == "__main__":
    unittest.main()
