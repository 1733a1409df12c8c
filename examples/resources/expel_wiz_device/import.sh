terraform import expel_wiz_device.this <workbench security device id>
