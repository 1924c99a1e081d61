"""Platform readers behind ``HardwareResource``, one module per source of readings.

Each reader collects what it can and notes what it could not; none of them raises, runs
anything with sudo, or waits on a command without a timeout.
"""
