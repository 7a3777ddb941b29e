"""Voice file readers: Piper ONNX voices (`piper`) and original VITS checkpoints (`checkpoint`).

Submodules are imported explicitly: `settings` must stay importable without torch so that
listing voices stays cheap.
"""
