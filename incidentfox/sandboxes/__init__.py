"""The SRE agent (design §7): Claude Agent SDK sessions in isolated sandboxes, the model proxy, and their tokens."""
