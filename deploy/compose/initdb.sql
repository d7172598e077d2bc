-- One database per service: the registry and each node keep their rows apart.
CREATE DATABASE registry OWNER corridor;
CREATE DATABASE ru_lotl OWNER corridor;
CREATE DATABASE cn_ntlnp OWNER corridor;
