print("annex-cli")
