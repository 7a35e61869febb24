#!/bin/sh
# Prints the greeting the image was built with.
cat /app/greeting.txt
