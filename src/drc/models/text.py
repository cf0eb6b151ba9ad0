class ByteTokenizer:  # placeholder
    pass
