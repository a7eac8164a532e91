"""earshot's engine worker: one faster-whisper model per process, driven over stdin/stdout."""
