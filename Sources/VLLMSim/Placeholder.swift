enum SimPlaceholder {}
