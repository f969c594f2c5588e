"""Errors that stop a node at start-up with one clear line instead of a traceback."""


class ConfigError(ValueError):
    """A parameter, parameter file or config file is wrong; the message says which and why."""


class DeviceError(RuntimeError):
    """A device or input (camera, video file, serial port) cannot be opened or has gone away."""


# Exit codes of a node that could not start, and what the vla runner says about them.
EXIT_CONFIG_ERROR = 2
EXIT_DEVICE_ERROR = 3
EXIT_REASONS = {
    EXIT_CONFIG_ERROR: 'bad configuration',
    EXIT_DEVICE_ERROR: 'device or input unavailable',
}
