from services.fulfillment.app import main

main()
