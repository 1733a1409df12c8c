terraform import expel_sentinelone_device.edr <workbench device id>
terraform import expel_sentinelone_device.edr <workbench device id>/<sentinelone account id>
terraform import expel_sentinelone_device.edr <workbench device id>/<account id>/<site id>
