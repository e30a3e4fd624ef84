// handshake
