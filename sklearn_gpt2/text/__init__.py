"""Text processing without torch: input checks, the tokenization spec, token cache, batching.

Nothing in this subpackage imports torch or transformers, so it serves both the training
estimators and a torch-free runtime. A tokenizer is any object with the Hugging Face call
interface (``tokenizer(texts, add_special_tokens=...)["input_ids"]``) and an ``eos_token_id``.
"""
