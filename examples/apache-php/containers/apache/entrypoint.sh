#!/bin/bash
set -e

# Substitute environment variables in the configuration templates: only the names listed, so that nothing else
# of the environment (the database password) ends up in a file.
export SERVER_NAME="${SERVER_NAME:-localhost}"
# shellcheck disable=SC2016
envsubst '${SERVER_NAME}' < /etc/apache2/apache2.conf.template > /etc/apache2/apache2.conf
# shellcheck disable=SC2016
envsubst '${SERVER_NAME}' < /etc/apache2/sites-available/unified.conf.template > /etc/apache2/sites-available/unified.conf

# Enable the site
a2ensite -q unified

# Execute the main command
exec "$@"
