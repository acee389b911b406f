"""Device drivers, one folder per family: access/, bins/, cameras/."""
