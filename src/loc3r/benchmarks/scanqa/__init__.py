"""ScanQA: open questions about ScanNet scenes (EM@1, BLEU, METEOR, ROUGE-L, CIDEr)."""
