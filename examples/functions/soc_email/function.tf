output "soc_email" {
  value = provider::expel::soc_email("Acme Corp") # "soc+acme_corp@expel.io"
}
