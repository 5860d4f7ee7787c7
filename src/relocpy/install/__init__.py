"""Install: choosing a build, the resolution chain (installed, mirrors, binary cache,
a build), installed trees and their launchers, user settings and the caches."""
