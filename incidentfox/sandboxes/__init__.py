"""The SRE agent (design §7): Claude Agent SDK sessions in isolated sandboxes, and the model proxy."""
