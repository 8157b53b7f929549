"""hubcounter: the real-time download counter of a model hub."""
