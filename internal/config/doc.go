// Package config is adsyn serve's configuration: one typed struct, its
// defaults, its flags (each with an ADSYN_… environment equivalent) and its
// validation, importable so the system can be embedded and tested without main.
package config
