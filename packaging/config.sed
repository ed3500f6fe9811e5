# How the packaged /etc/zerotouch/config.toml differs from config.example.toml: Debian paths
# and the standard ports. A test checks that packaging/config.toml is exactly this applied
# to config.example.toml (regenerate: sed -f packaging/config.sed config.example.toml > packaging/config.toml).
1i # zerotouch configuration installed by the Debian package (/etc/zerotouch/config.toml).\n# Check it with: zerotouch check-config /etc/zerotouch/config.toml\n
s|^data_dir = "./zerotouch-data"|data_dir = "/var/lib/zerotouch"|
s|^secrets_key_file = ""|secrets_key_file = "/etc/zerotouch/secret.key"|
s|^http_listen = "0.0.0.0:8080"|http_listen = "0.0.0.0:80"|
s|^https_listen = "0.0.0.0:8443"|https_listen = "0.0.0.0:443"|
s|^dir = ""$|dir = "/var/backups/zerotouch"|
