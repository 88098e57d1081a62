import AnnexdKit
